using CallbackHub.Agents;

namespace CallbackHub.UnitTests;

public sealed class ServiceTokenTests
{
    [Fact]
    public void Tokens_are_letters_and_digits_within_the_gateways_50_characters()
    {
        var tokens = Enumerable.Range(0, 1000).Select(_ => ServiceToken.Generate()).ToList();

        Assert.All(tokens, t => Assert.Matches("^[A-Za-z0-9]{40}$", t));
        Assert.Equal(tokens.Count, tokens.Distinct().Count());
        // log2(62) * 40 ≈ 238 bits, far above the 128 required.
        Assert.True(Math.Log2(62) * ServiceToken.Length >= 128);
    }

    [Fact]
    public void The_stored_hash_is_not_the_token()
    {
        var token = ServiceToken.Generate();

        Assert.Equal(32, ServiceToken.Hash(token).Length);
        Assert.Equal(ServiceToken.Hash(token), ServiceToken.Hash(token));
        Assert.NotEqual(ServiceToken.Hash(token), ServiceToken.Hash(ServiceToken.Generate()));
    }
}
