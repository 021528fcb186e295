using CallbackHub.GatewaySimulator.Play;
using CallbackHub.GatewaySimulator.Pushing;
using CallbackHub.GatewaySimulator.Recording;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CallbackHub.GatewaySimulator.Control;

/// <summary>The control API under /simulator/, for tests and people; the same operations as <see cref="GatewaySimulatorState"/>.</summary>
internal static class ControlEndpoints
{
    public static IEndpointRouteBuilder MapControlEndpoints(this IEndpointRouteBuilder app)
    {
        var simulator = app.MapGroup("/simulator");
        simulator.MapGet("/agents", (GatewaySimulatorState state) => TypedResults.Ok(state.GetAgents()));
        simulator.MapGet("/agents/{id}", GetAgent);
        simulator.MapGet("/requests", (string? agentId, GatewaySimulatorState state) => TypedResults.Ok(state.GetRequests(agentId)));
        simulator.MapGet("/pushes", (string? agentId, GatewaySimulatorState state) => TypedResults.Ok(state.GetPushes(agentId)));
        simulator.MapPost("/agents/{id}/events", Enqueue);
        simulator.MapPost("/agents/{id}/push-once", PushOnceAsync);
        simulator.MapPost("/agents/{id}/sign-out", SignOut);
        simulator.MapPost("/agents/{id}/rotate-guid", RotateGuid);
        simulator.MapGet("/heartbeats", (bool? details, GatewaySimulatorState state) => TypedResults.Ok(state.GetHeartbeats(details == true)));
        simulator.MapGet("/heartbeats/{id}", GetHeartbeats);
        simulator.MapDelete("/heartbeats", (GatewaySimulatorState state) =>
        {
            state.ResetHeartbeats();
            return TypedResults.NoContent();
        });
        simulator.MapGet("/switches", (GatewaySimulatorState state) => TypedResults.Ok(state.Switches));
        simulator.MapPatch("/switches", UpdateSwitches);
        simulator.MapGet("/play", (GatewaySimulatorState state) => TypedResults.Ok(state.PlayStatus));
        simulator.MapPost("/play", StartPlayAsync);
        simulator.MapDelete("/play", async (GatewaySimulatorState state) => TypedResults.Ok(await state.StopPlayAsync()));
        simulator.MapPost("/reset", (GatewaySimulatorState state) =>
        {
            state.Reset();
            return TypedResults.NoContent();
        });
        return app;
    }

    private static Results<Ok<AgentView>, NotFound<ControlError>> GetAgent(string id, GatewaySimulatorState state) =>
        state.GetAgent(id) is { } agent ? TypedResults.Ok(agent) : UnknownAgent(id);

    private static Results<Ok<AgentHeartbeats>, NotFound<ControlError>> GetHeartbeats(string id, GatewaySimulatorState state) =>
        state.GetHeartbeats(id) is { } heartbeats ? TypedResults.Ok(heartbeats) : UnknownAgent(id);

    private static Results<Accepted<QueuedAnswer>, NotFound<ControlError>, Conflict<ControlError>> Enqueue(
        string id, IReadOnlyList<SimulatedEvent> events, GatewaySimulatorState state) =>
        state.Enqueue(id, events) switch
        {
            QueueOutcome.Queued => TypedResults.Accepted((string?)null, new QueuedAnswer(events.Count)),
            QueueOutcome.UnknownAgent => UnknownAgent(id),
            _ => NoPushSession(id),
        };

    private static async Task<Results<Ok<PushResponse>, NotFound<ControlError>, Conflict<ControlError>>> PushOnceAsync(
        string id, PushOnceRequest request, GatewaySimulatorState state, CancellationToken cancellationToken)
    {
        if (state.GetAgent(id) is null)
        {
            return UnknownAgent(id);
        }

        var response = await state.PushOnceAsync(id, request.Events, request.ServiceToken, request.Guid, cancellationToken);
        return response is null ? NoPushSession(id) : TypedResults.Ok(response);
    }

    private static Results<Ok<AgentView>, NotFound<ControlError>> SignOut(string id, string? reason, bool? shutdown, GatewaySimulatorState state) =>
        state.SignOut(id, reason ?? "simulator", shutdown) ? TypedResults.Ok(state.GetAgent(id)!) : NotSignedIn(id);

    private static Results<Ok<SimulatorSwitches>, BadRequest<ControlError>> UpdateSwitches(SwitchesUpdate update, GatewaySimulatorState state)
    {
        try
        {
            return TypedResults.Ok(state.UpdateSwitches(update));
        }
        catch (ArgumentException ex)
        {
            return TypedResults.BadRequest(new ControlError(ex.Message));
        }
    }

    private static Results<Ok<GuidAnswer>, NotFound<ControlError>> RotateGuid(string id, GatewaySimulatorState state) =>
        state.RotateGuid(id) is { } guid ? TypedResults.Ok(new GuidAnswer(guid)) : NotSignedIn(id);

    private static async Task<Results<Ok<PlayStatus>, BadRequest<ControlError>>> StartPlayAsync(PlaySettings settings, GatewaySimulatorState state)
    {
        if (settings.EventsPerSecond <= 0 || double.IsNaN(settings.EventsPerSecond) || double.IsInfinity(settings.EventsPerSecond))
        {
            return TypedResults.BadRequest(new ControlError("eventsPerSecond must be a number above 0"));
        }

        if (settings.Agents < 0)
        {
            return TypedResults.BadRequest(new ControlError("agents must not be negative"));
        }

        return TypedResults.Ok(await state.StartPlayAsync(settings));
    }

    private static NotFound<ControlError> UnknownAgent(string id) => TypedResults.NotFound(new ControlError($"agent {id} is unknown to the simulator"));

    private static NotFound<ControlError> NotSignedIn(string id) => TypedResults.NotFound(new ControlError($"agent {id} is not signed in"));

    private static Conflict<ControlError> NoPushSession(string id) =>
        TypedResults.Conflict(new ControlError($"agent {id} has no push-mode session (sign in with callBackUri and serviceToken)"));
}

/// <summary>Body of POST /simulator/agents/{id}/push-once; null overrides mean the session's own values.</summary>
internal sealed record PushOnceRequest(IReadOnlyList<SimulatedEvent> Events, string? ServiceToken = null, string? Guid = null);

internal sealed record QueuedAnswer(int Queued);

internal sealed record GuidAnswer(string Guid);

internal sealed record ControlError(string Error);
