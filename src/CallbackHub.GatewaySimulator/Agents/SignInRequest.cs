using System.Text.Json.Serialization;

namespace CallbackHub.GatewaySimulator.Agents;

/// <summary>The body of sign-in and forced sign-in, with the gateway's exact (case-sensitive) field names.</summary>
internal sealed class SignInRequest
{
    [JsonPropertyName("password")] public string? Password { get; init; }
    [JsonPropertyName("phonenum")] public string? PhoneNum { get; init; }
    [JsonPropertyName("autoanswer")] public bool? AutoAnswer { get; init; }
    [JsonPropertyName("autoenteridle")] public bool? AutoEnterIdle { get; init; }
    [JsonPropertyName("releasephone")] public bool? ReleasePhone { get; init; }
    [JsonPropertyName("agenttype")] public int? AgentType { get; init; }
    [JsonPropertyName("status")] public int? Status { get; init; }
    [JsonPropertyName("ip")] public string? Ip { get; init; }
    [JsonPropertyName("entryIp")] public string? EntryIp { get; init; }
    [JsonPropertyName("phonelinkage")] public bool? PhoneLinkage { get; init; }
    [JsonPropertyName("checkInWebm")] public bool? CheckInWebm { get; init; }
    [JsonPropertyName("checkInMailm")] public bool? CheckInMailm { get; init; }
    [JsonPropertyName("vcPhoneNumber")] public string? VcPhoneNumber { get; init; }
    [JsonPropertyName("listenStatus")] public bool? ListenStatus { get; init; }
    [JsonPropertyName("callBackUri")] public string? CallBackUri { get; init; }
    [JsonPropertyName("serviceToken")] public string? ServiceToken { get; init; }
    [JsonPropertyName("serviceworkid")] public string? ServiceWorkId { get; init; }

    /// <summary>Push mode needs both a callback address and a token; otherwise the agent polls.</summary>
    public bool IsPushMode => !string.IsNullOrEmpty(CallBackUri) && !string.IsNullOrEmpty(ServiceToken);
}
