using System.Security.Cryptography;
using System.Text;

namespace CallbackHub.Agents;

/// <summary>
/// The bearer secret the gateway sends back on every push. The gateway accepts at most 50 letters and digits;
/// 40 characters from 62 symbols carry about 238 bits of entropy.
/// </summary>
internal static class ServiceToken
{
    public const int Length = 40;
    private const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

    public static string Generate() => RandomNumberGenerator.GetString(Alphabet, Length);

    /// <summary>
    /// What is stored instead of the token. A plain SHA-256 is enough: the token is random with far more entropy
    /// than any guessing could cover, so a slow password hash would only slow down every push.
    /// </summary>
    public static byte[] Hash(string token) => SHA256.HashData(Encoding.UTF8.GetBytes(token));
}
