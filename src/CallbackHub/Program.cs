using CallbackHub;

return await CallbackHubApp.RunAsync(args);
