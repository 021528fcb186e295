using System.Net;
using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;

namespace CallbackHub.Callbacks;

/// <summary>
/// Counts refused pushes per client address (ASP.NET Core's rate limiter: a token bucket per address). Only refusals take
/// from the bucket, so the gateway's accepted pushes are never delayed or refused by it, even from an address that also
/// sends wrong ones; an address past its budget has its refusals answered 429 at once and not logged one by one.
/// </summary>
internal sealed class RefusalLimiter : IDisposable
{
    private readonly PartitionedRateLimiter<IPAddress> _limiter;

    public RefusalLimiter(IOptions<CallbackOptions> options)
    {
        var o = options.Value;
        _limiter = PartitionedRateLimiter.Create<IPAddress, IPAddress>(address => RateLimitPartition.GetTokenBucketLimiter(address,
            _ => new TokenBucketRateLimiterOptions
            {
                TokenLimit = o.RefusalBurst,
                TokensPerPeriod = o.RefusalsPerSecondPerAddress,
                ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                QueueLimit = 0,
                // The partitioned limiter replenishes its buckets itself (and drops idle ones): no timer per address.
                AutoReplenishment = false,
            }));
    }

    /// <summary>
    /// Whether <paramref name="address"/> still has refusals left: a push from it with a token this instance does not know
    /// may then wait for the token to be looked up. One from an address past its budget is answered at once.
    /// </summary>
    public bool HasBudget(IPAddress? address) => _limiter.GetStatistics(address ?? IPAddress.None)?.CurrentAvailablePermits > 0;

    /// <summary>Whether <paramref name="address"/> may be told why its push was refused; false: answer 429.</summary>
    public bool AllowRefusal(IPAddress? address)
    {
        using var lease = _limiter.AttemptAcquire(address ?? IPAddress.None);
        return lease.IsAcquired;
    }

    public void Dispose() => _limiter.Dispose();
}
