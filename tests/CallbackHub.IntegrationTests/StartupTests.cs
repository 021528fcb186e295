using CallbackHub.IntegrationTests.Infrastructure;
using CallbackHub.IntegrationTests.Support;
using Npgsql;

namespace CallbackHub.IntegrationTests;

/// <summary>
/// The built service started as an operator starts it (its own process, environment variables): a start that cannot
/// succeed is a sentence per problem and exit code 1; a normal start and stop log no warning and no error.
/// </summary>
[Collection(InfrastructureCollection.Name)]
public sealed class StartupTests(PostgresFixture postgres, RabbitMqFixture rabbitMq)
{
    private static readonly TimeSpan ExitTimeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task With_nothing_set_every_required_key_is_named_once_and_the_exit_is_plain()
    {
        await using var service = ServiceProcess.Start(new Dictionary<string, string>());

        var exitCode = await service.WaitForExitAsync(ExitTimeout);

        Assert.Equal(1, exitCode);
        string[] keys = ["ConnectionStrings__Postgres", "ConnectionStrings__RabbitMq", "Gateway__BaseUrl", "Gateway__CallbackBaseUrl", "Management__ApiKey"];
        foreach (var key in keys)
        {
            Assert.Single(Lines(service.Output), line => line.Contains(key, StringComparison.Ordinal));
        }

        AssertNoCrash(service.Output);
    }

    [Fact]
    public async Task Values_of_the_wrong_type_are_named_with_the_expected_form()
    {
        var settings = await ValidSettingsAsync();
        settings["Gateway__Timeout"] = "ten seconds";
        settings["Sessions__SignOutOnShutdown"] = "maybe";
        settings["Agents__0__AgentId"] = "42";
        await using var service = ServiceProcess.Start(settings);

        Assert.Equal(1, await service.WaitForExitAsync(ExitTimeout));
        Assert.Contains("Gateway__Timeout must be a duration such as 00:00:30; 'ten seconds' is not.", service.Output, StringComparison.Ordinal);
        Assert.Contains("Sessions__SignOutOnShutdown must be true or false; 'maybe' is not.", service.Output, StringComparison.Ordinal);
        Assert.Contains("Agents__0__AgentId must be a number from 101", service.Output, StringComparison.Ordinal);
        AssertNoCrash(service.Output);
    }

    [Fact]
    public async Task A_wrong_database_password_names_the_setting_host_and_port_but_never_the_password()
    {
        var settings = await ValidSettingsAsync();
        var builder = new NpgsqlConnectionStringBuilder(settings["ConnectionStrings__Postgres"]) { Password = "not-the-password-42" };
        settings["ConnectionStrings__Postgres"] = builder.ConnectionString;
        await using var service = ServiceProcess.Start(settings);

        Assert.Equal(1, await service.WaitForExitAsync(ExitTimeout));
        var sentence = Assert.Single(Lines(service.Output), line => line.Contains("ConnectionStrings__Postgres", StringComparison.Ordinal));
        Assert.Contains($"{builder.Host}:{builder.Port}", sentence, StringComparison.Ordinal);
        Assert.Contains("refused the login", sentence, StringComparison.Ordinal);
        Assert.DoesNotContain("not-the-password-42", service.Output, StringComparison.Ordinal);
        AssertNoCrash(service.Output);
    }

    [Fact]
    public async Task A_database_that_does_not_answer_within_the_startup_timeout_is_named()
    {
        var settings = await ValidSettingsAsync();
        var closedPort = ContainerSupport.FreeTcpPort();
        settings["ConnectionStrings__Postgres"] = new NpgsqlConnectionStringBuilder(settings["ConnectionStrings__Postgres"]) { Port = closedPort }.ConnectionString;
        settings["Database__StartupTimeout"] = "00:00:03";
        await using var service = ServiceProcess.Start(settings);

        Assert.Equal(1, await service.WaitForExitAsync(ExitTimeout));
        var sentence = Assert.Single(Lines(service.Output), line => line.Contains("ConnectionStrings__Postgres", StringComparison.Ordinal));
        Assert.Contains($":{closedPort}", sentence, StringComparison.Ordinal);
        Assert.Contains("did not answer within Database__StartupTimeout (00:00:03)", sentence, StringComparison.Ordinal);
        AssertNoCrash(service.Output);
    }

    [Fact]
    public async Task A_user_without_the_rights_to_create_the_schema_is_told_so()
    {
        var settings = await ValidSettingsAsync();
        var database = new NpgsqlConnectionStringBuilder(settings["ConnectionStrings__Postgres"]);
        var role = $"reader_{Guid.NewGuid():N}"[..20];
        await using (var admin = new NpgsqlConnection(database.ConnectionString))
        {
            await admin.OpenAsync();
            // PostgreSQL 15 lets only the owner create in the public schema: a plain login role may connect, not create.
            await using var create = new NpgsqlCommand($"CREATE ROLE {role} LOGIN PASSWORD 'reader'; REVOKE CREATE ON SCHEMA public FROM PUBLIC", admin);
            await create.ExecuteNonQueryAsync();
        }

        settings["ConnectionStrings__Postgres"] = new NpgsqlConnectionStringBuilder(database.ConnectionString) { Username = role, Password = "reader" }.ConnectionString;
        await using var service = ServiceProcess.Start(settings);

        Assert.Equal(1, await service.WaitForExitAsync(ExitTimeout));
        var sentence = Assert.Single(Lines(service.Output), line => line.Contains("ConnectionStrings__Postgres", StringComparison.Ordinal));
        Assert.Contains("may not create or change CallbackHub's tables", sentence, StringComparison.Ordinal);
        Assert.Contains($"user '{role}'", sentence, StringComparison.Ordinal);
        AssertNoCrash(service.Output);
    }

    [Fact]
    public async Task A_first_start_and_a_normal_stop_with_a_roster_log_no_warning_and_no_error()
    {
        await using var gateway = await SimulatorInstance.StartAsync();
        var settings = await ValidSettingsAsync(gateway.BaseUri);
        var port = ContainerSupport.FreeTcpPort();
        settings["ASPNETCORE_URLS"] = $"http://127.0.0.1:{port}";
        settings["Gateway__CallbackBaseUrl"] = $"http://127.0.0.1:{port}";
        int[] roster = [1001, 1002, 1003];
        for (var i = 0; i < roster.Length; i++)
        {
            settings[$"Agents__{i}__AgentId"] = $"{roster[i]}";
            settings[$"Agents__{i}__Password"] = "demo";
            settings[$"Agents__{i}__PhoneNumber"] = $"7000{i}";
        }

        await using var service = ServiceProcess.Start(settings);
        // Each sign-in pushes AgentOther_InService and AgentState_Ready.
        await WaitForEventsAsync(settings["ConnectionStrings__Postgres"], 2 * roster.Length, service);
        await WaitUntilReadyAsync(new Uri($"http://127.0.0.1:{port}/health/ready"), service);
        var exitCode = await service.StopAsync(ExitTimeout);

        Assert.Equal(0, exitCode);
        Assert.Contains("Database schema is up to date", service.Output, StringComparison.Ordinal);
        var complaints = Lines(service.Output).Where(line => line.StartsWith("warn:", StringComparison.Ordinal) || line.StartsWith("fail:", StringComparison.Ordinal) || line.StartsWith("crit:", StringComparison.Ordinal));
        Assert.True(!complaints.Any(), service.Output);
        Assert.DoesNotContain(" lost", service.Output, StringComparison.Ordinal);
        var states = await EventRows.ScalarAsync<long>(settings["ConnectionStrings__Postgres"], "SELECT count(*) FROM agent_sessions WHERE state = 'signed-out'");
        Assert.Equal(roster.Length, states);
    }

    private async Task<Dictionary<string, string>> ValidSettingsAsync(Uri? gateway = null) => new()
    {
        ["ConnectionStrings__Postgres"] = await postgres.CreateDatabaseAsync("startup"),
        ["ConnectionStrings__RabbitMq"] = await rabbitMq.CreateVirtualHostAsync("startup"),
        ["Gateway__BaseUrl"] = gateway?.ToString() ?? "http://127.0.0.1:9",
        ["Gateway__CallbackBaseUrl"] = "http://127.0.0.1:9",
        ["Management__ApiKey"] = "startup-test-api-key-0123456789",
        ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{ContainerSupport.FreeTcpPort()}",
    };

    /// <summary>Until the service has migrated its database and stored that many events (or has died).</summary>
    private static async Task WaitForEventsAsync(string database, int count, ServiceProcess service)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                if (await EventRows.ScalarAsync<long>(database, "SELECT count(*) FROM agent_events") >= count)
                {
                    return;
                }
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable)
            {
                // Not migrated yet.
            }

            await Task.Delay(200);
        }

        Assert.Fail($"The service did not store {count} events within 60 s. Its output:\n{service.Output}");
    }

    /// <summary>A normal stop is of a service that has finished starting: PostgreSQL, RabbitMQ and the outbox all ready.</summary>
    private static async Task WaitUntilReadyAsync(Uri ready, ServiceProcess service)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                using var response = await http.GetAsync(ready);
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            await Task.Delay(200);
        }

        Assert.Fail($"The service did not turn ready within 60 s. Its output:\n{service.Output}");
    }

    private static string[] Lines(string output) => output.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);

    private static void AssertNoCrash(string output)
    {
        Assert.Contains("CallbackHub cannot start", output, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
        Assert.DoesNotContain("MassTransit", output, StringComparison.Ordinal);
        Assert.DoesNotContain("fail:", output, StringComparison.Ordinal);
    }
}
