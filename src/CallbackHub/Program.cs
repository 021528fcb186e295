using CallbackHub;

var app = CallbackHubApp.Build(args);
await app.RunAsync();
