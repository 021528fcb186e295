using CallbackHub.GatewaySimulator;

await SimulatorApp.Build(args).RunAsync();
