using System.Net;
using System.Net.Sockets;

namespace CallbackHub.Agents;

/// <summary>
/// Body of <c>PUT /api/agents/{agentId}/session</c>: the agent's credentials and the optional sign-in fields
/// of the gateway (docs/gateway-protocol.md §1). <c>callBackUri</c> and <c>serviceToken</c> are CallbackHub's to set.
/// </summary>
internal record SignInRequest
{
    public string? Password { get; init; }
    public string? PhoneNumber { get; init; }
    public int? AgentType { get; init; }
    public int? Status { get; init; }
    public bool? AutoAnswer { get; init; }
    public bool? AutoEnterIdle { get; init; }
    public bool? ReleasePhone { get; init; }
    public bool? PhoneLinkage { get; init; }
    public bool? CheckInWebm { get; init; }
    public bool? CheckInMailm { get; init; }
    public string? Ip { get; init; }
    public string? EntryIp { get; init; }
    public string? VcPhoneNumber { get; init; }
    public bool? ListenStatus { get; init; }
    public string? ServiceWorkId { get; init; }

    /// <summary>The skill queues to sign in to after every sign-in (the gateway's <c>resetskill</c>); none when absent.</summary>
    public SkillQueues? Skills { get; init; }

    /// <summary>The gateway's own limits, checked here so a mistake gets a clear answer before any call.</summary>
    public Dictionary<string, string[]> Validate()
    {
        var errors = new Dictionary<string, string[]>();
        void Fail(string field, string message) => errors[field] = [message];

        // Empty is allowed: sites without CTI passwords sign in with "", as Huawei's own example does.
        if (Password is null || Password.Length > 32)
        {
            Fail("password", "password is required (it may be empty) and may have at most 32 characters.");
        }

        if (string.IsNullOrEmpty(PhoneNumber) || PhoneNumber.Length > 24)
        {
            Fail("phoneNumber", "phoneNumber (the softphone number) is required and may have at most 24 characters.");
        }

        if (AgentType is not (null or 4 or 11))
        {
            Fail("agentType", "agentType must be 4 (PC + phone) or 11 (PC + video phone).");
        }

        if (Status is not (null or 3 or 4 or 5))
        {
            Fail("status", "status must be 3 (busy), 4 (idle) or 5 (wrap-up).");
        }

        if (Ip is not null && !IsIPv4(Ip))
        {
            Fail("ip", "ip must be an IPv4 address.");
        }

        if (VcPhoneNumber is { Length: > 24 })
        {
            Fail("vcPhoneNumber", "vcPhoneNumber may have at most 24 characters.");
        }

        if (ServiceWorkId is { Length: > 30 })
        {
            Fail("serviceWorkId", "serviceWorkId may have at most 30 characters.");
        }

        if (Skills is { } skills && skills.Validate() is { } skillError)
        {
            Fail("skills", skillError);
        }

        return errors;
    }

    private static bool IsIPv4(string value) =>
        value.Length <= 15 && IPAddress.TryParse(value, out var address) && address.AddressFamily == AddressFamily.InterNetwork;
}
