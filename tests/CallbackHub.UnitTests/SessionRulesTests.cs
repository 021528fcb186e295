using CallbackHub.Agents;
using CallbackHub.Gateway;
using CallbackHub.Storage;

namespace CallbackHub.UnitTests;

/// <summary>The rules that move a session between states, without a database or a gateway.</summary>
public sealed class SessionRulesTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 2, 8, 0, 0, TimeSpan.Zero);
    private static readonly SessionKeepingOptions Options = new();

    [Theory]
    [InlineData("0", "Success")]
    [InlineData("100-006", "SessionGone")]
    [InlineData("000-003", "SessionGone")]
    [InlineData("105-005", "SessionGone")]
    [InlineData("105-006", "SessionGone")]
    [InlineData("105-007", "SessionGone")]
    [InlineData("000-004", "BackOff")]
    [InlineData("000-007", "BackOff")]
    [InlineData("100-007", "BackOff")]
    [InlineData("100-002", "AlreadySignedIn")]
    [InlineData("100-004", "Hopeless")]
    [InlineData("110-016", "Hopeless")]
    [InlineData("123-456", "BackOff")]
    public void Each_retcode_has_one_handling(string retcode, string handling) =>
        Assert.Equal(Enum.Parse<RetcodeHandling>(handling), GatewayRetcodes.Handle(retcode));

    [Theory]
    [InlineData("0", true, true, "Active")]
    [InlineData("100-002", true, true, "Resume")]
    [InlineData("100-002", true, false, "RetryLater")]
    [InlineData("100-002", false, true, "GiveUp")]
    [InlineData("100-004", true, true, "GiveUp")]
    [InlineData("000-004", true, false, "RetryLater")]
    [InlineData("000-007", true, false, "RetryLater")]
    [InlineData("105-007", true, false, "RetryLater")]
    [InlineData("000-004", false, false, "GiveUp")]
    public void A_sign_in_answer_is_judged_by_retcode_by_who_asked_and_by_what_we_hold(string retcode, bool automatic, bool heldGuid, string verdict) =>
        Assert.Equal(Enum.Parse<SignInVerdict>(verdict), SessionRules.JudgeSignIn(retcode, automatic, heldGuid));

    [Fact]
    public void Heartbeats_are_due_after_the_interval_and_sign_ins_after_their_backoff()
    {
        Assert.False(SessionRules.IsDue(Options, AgentSessionState.Active, Now.AddSeconds(-29), null, Now, Now));
        Assert.True(SessionRules.IsDue(Options, AgentSessionState.Active, Now.AddSeconds(-30), null, Now, Now));
        Assert.True(SessionRules.IsDue(Options, AgentSessionState.Lost, Now, Now, Now, Now));
        Assert.False(SessionRules.IsDue(Options, AgentSessionState.Lost, Now, Now.AddSeconds(1), Now, Now));
        Assert.False(SessionRules.IsDue(Options, AgentSessionState.Failed, null, null, Now, Now));
        Assert.True(SessionRules.IsDue(Options, AgentSessionState.Failed, null, Now, Now, Now));
        Assert.False(SessionRules.IsDue(Options, AgentSessionState.SigningOut, null, null, Now.AddSeconds(-119), Now));
        Assert.True(SessionRules.IsDue(Options, AgentSessionState.SigningOut, null, null, Now.AddSeconds(-120), Now));
        Assert.False(SessionRules.IsDue(Options, AgentSessionState.SignedOut, null, Now, Now.AddDays(-1), Now));
    }

    [Fact]
    public void A_token_is_rotated_only_once_the_gateway_was_seen_using_the_current_one_and_no_older_one_is_left()
    {
        var session = new AgentSession { TokenHash = [1], SignedInAt = Now.AddMinutes(-2), LastTokenRotationAt = Now.AddMinutes(-2) };
        Assert.False(SessionRules.ShouldRotateToken(Options, session, Now)); // never seen in a push

        session.TokenSeenAt = Now.AddMinutes(-1);
        Assert.True(SessionRules.ShouldRotateToken(Options, session, Now));

        SessionTransitions.Rotate(session, [2], Now);
        Assert.Equal([1], session.PreviousTokenHash);
        Assert.Null(session.PreviousTokenValidUntil); // good until a push carries the new one
        Assert.False(SessionRules.ShouldRotateToken(Options, session, Now.AddMinutes(10))); // the new one never seen: no third token

        session.TokenSeenAt = Now.AddMinutes(1);
        session.PreviousTokenValidUntil = Now.AddMinutes(2);
        Assert.False(SessionRules.ShouldRotateToken(Options, session, Now.AddSeconds(100))); // the old one still in its overlap
        Assert.True(SessionRules.ShouldRotateToken(Options, session, Now.AddMinutes(2)));
        Assert.False(SessionRules.ShouldRotateToken(new SessionKeepingOptions { TokenRotationInterval = TimeSpan.Zero }, session, Now.AddDays(1)));
    }

    [Fact]
    public void A_resumed_session_keeps_the_guid_and_token_the_gateway_knows_and_heartbeats_at_once()
    {
        var session = new AgentSession { AgentId = 1001, State = AgentSessionState.Lost, Guid = "g-1", TokenHash = [1], TokenSeenAt = Now.AddMinutes(-5), SignedInAt = Now.AddHours(-3) };
        var claim = new SignInClaim(session, AgentSessionState.Lost, session.Guid, "c=1", "{}", session.TokenHash, session.TokenSeenAt, session.SignedInAt);
        SessionTransitions.SigningIn(session, [9], Now, Options.TokenOverlap);

        SessionTransitions.Resume(session, claim, "me", Now, Options.HeartbeatInterval);

        Assert.Equal(AgentSessionState.Active, session.State);
        Assert.Equal("g-1", session.Guid);
        Assert.Equal([1], session.TokenHash);
        Assert.Equal([9], session.PreviousTokenHash);
        Assert.Equal(Now, session.PreviousTokenValidUntil);
        Assert.True(SessionRules.IsDue(Options, session.State, session.LastHeartbeatAt, null, Now, Now));
        Assert.False(SessionRules.GatewayHasForgotten(Options, session.LastHeartbeatAt, Now));
    }

    [Fact]
    public void A_sign_out_keeps_the_ended_token_for_the_grace_only()
    {
        var session = new AgentSession { State = AgentSessionState.SigningOut, Guid = "g", TokenHash = [1], PreviousTokenHash = [0] };

        SessionTransitions.SignedOut(session, null, Now, TimeSpan.FromMinutes(2));

        Assert.Equal(AgentSessionState.SignedOut, session.State);
        Assert.Null(session.TokenHash);
        Assert.Null(session.Guid);
        Assert.Equal([1], session.PreviousTokenHash);
        Assert.Equal(Now.AddMinutes(2), session.PreviousTokenValidUntil);
    }

    [Fact]
    public void An_over_long_guid_is_not_adopted_and_says_so()
    {
        var session = new AgentSession { State = AgentSessionState.Active, Guid = "g-1" };

        SessionTransitions.HeartbeatAnswered(session, new GatewayAnswer("0", "success", null, new string('x', 300)), Now);

        Assert.Equal("g-1", session.Guid);
        Assert.Equal(Now, session.LastHeartbeatAt);
        Assert.Contains("300 characters", session.LastError, StringComparison.Ordinal);
    }

    [Fact]
    public void Failed_sign_ins_back_off_doubling_up_to_the_limit()
    {
        Assert.Equal(TimeSpan.FromSeconds(5), SessionRules.Backoff(Options, 1));
        Assert.Equal(TimeSpan.FromSeconds(10), SessionRules.Backoff(Options, 2));
        Assert.Equal(TimeSpan.FromMinutes(5), SessionRules.Backoff(Options, 30));
    }
}
