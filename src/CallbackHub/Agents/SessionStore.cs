using CallbackHub.Storage;
using Microsoft.EntityFrameworkCore;

namespace CallbackHub.Agents;

/// <summary>
/// The <c>agent_sessions</c> rows as the API, the sign-in and the keeper read and change them (EF Core; the keeper's
/// lease statements are in <see cref="SessionLeases"/>). Every change raises the row's version, and a change made from
/// an older read is refused: two instances — or an instance and a push — never overwrite each other's newer state.
/// </summary>
internal sealed partial class SessionStore(
    CallbackHubDbContext db, SessionTokens tokens, SessionDatabaseGate gate, TimeProvider time, ILogger<SessionStore> logger)
{
    public CallbackHubDbContext Db => db;

    /// <summary>One of the session work's database slots, for work done on <see cref="Db"/> directly (not nested in this class's own calls).</summary>
    public Task<IDisposable> EnterDatabaseAsync(CancellationToken cancellationToken) => gate.EnterAsync(cancellationToken);

    public async Task<AgentSession?> FindAsync(int agentId, CancellationToken cancellationToken)
    {
        using var _ = await gate.EnterAsync(cancellationToken);
        return await db.AgentSessions.SingleOrDefaultAsync(s => s.AgentId == agentId, cancellationToken);
    }

    /// <summary>
    /// Applies a change and saves it, even if the caller gave up meanwhile (the gateway has acted). False when the row
    /// changed since it was read (another instance took the agent over, a push ended the session…): nothing is written,
    /// the entity is read afresh, and the caller's view of the session is out of date.
    /// </summary>
    public async Task<bool> SaveAsync(AgentSession session, Action<AgentSession> change)
    {
        var tokensBefore = TokensOf(session);
        change(session);
        session.UpdatedAt = time.GetUtcNow();
        session.Version++;
        // Only a change of the tokens is news for SessionTokens: a heartbeat (every agent, every 30 s) leaves what it
        // knows of the agent's tokens in place, so the agent's next push does not read them again.
        var tokensChanged = tokensBefore != TokensOf(session);
        using var _ = await gate.EnterAsync(CancellationToken.None);
        try
        {
            await db.SaveChangesAsync(CancellationToken.None);
            return true;
        }
        catch (DbUpdateConcurrencyException)
        {
            LogStale(session.AgentId);
            await db.Entry(session).ReloadAsync(CancellationToken.None);
            tokensChanged = true;
            return false;
        }
        finally
        {
            if (tokensChanged)
            {
                TokensChanged(session);
            }
        }
    }

    /// <summary>
    /// The columns of a session that say which tokens it accepts. The hashes compare by reference: a transition assigns a
    /// new array whenever it changes one (the same hash assigned again counts as a change, which is only a needless read).
    /// </summary>
    private static (byte[]?, byte[]?, DateTimeOffset?, DateTimeOffset?) TokensOf(AgentSession s) =>
        (s.TokenHash, s.PreviousTokenHash, s.PreviousTokenValidUntil, s.TokenSeenAt);

    /// <summary>The session's tokens as saved are the ones this instance accepts (after <see cref="SaveAsync"/>, and the sign-in claim).</summary>
    public void TokensChanged(AgentSession session) => tokens.Saved(session.AgentId, session.TokenHash, session.PreviousTokenHash);

    /// <summary>
    /// The lease of a session this instance just signed in, on the database's clock (the keeper renews it from then on).
    /// Not a change of the session: its version stays.
    /// </summary>
    public async Task LeaseAsync(int agentId, string instanceId, TimeSpan duration)
    {
        using var _ = await gate.EnterAsync(CancellationToken.None);
        await db.AgentSessions.Where(s => s.AgentId == agentId && s.OwnerInstance == instanceId)
            .ExecuteUpdateAsync(u => u.SetProperty(s => s.LeaseExpiresAt, s => DateTimeOffset.UtcNow + duration), CancellationToken.None);
    }

    public async Task<AgentSessionView?> GetViewAsync(int agentId, CancellationToken cancellationToken) =>
        (await QueryViews(agentId).ToListAsync(cancellationToken)).SingleOrDefault();

    public async Task<IReadOnlyList<AgentSessionView>> ListViewsAsync(CancellationToken cancellationToken) =>
        await QueryViews(null).ToListAsync(cancellationToken);

    private IQueryable<AgentSessionView> QueryViews(int? agentId) =>
        from session in db.AgentSessions.AsNoTracking()
        where agentId == null || session.AgentId == agentId
        join stream in db.AgentStreams.AsNoTracking() on session.AgentId equals stream.AgentId into streams
        from stream in streams.DefaultIfEmpty()
        orderby session.AgentId
        select AgentSessionView.From(session, stream);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Session of agent {AgentId} changed meanwhile; the change based on the older read is dropped")]
    private partial void LogStale(int agentId);
}
