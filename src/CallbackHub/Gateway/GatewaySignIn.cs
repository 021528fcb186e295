using System.Text.Json.Serialization;

namespace CallbackHub.Gateway;

/// <summary>The sign-in body, with the gateway's own field names (docs/gateway-protocol.md §1). Nulls are not sent.</summary>
internal sealed record GatewaySignIn
{
    [JsonPropertyName("password")] public required string Password { get; init; }
    [JsonPropertyName("phonenum")] public required string PhoneNumber { get; init; }
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
    [JsonPropertyName("callBackUri")] public required string CallBackUri { get; init; }
    [JsonPropertyName("serviceToken")] public required string ServiceToken { get; init; }
    [JsonPropertyName("serviceworkid")] public string? ServiceWorkId { get; init; }
}
