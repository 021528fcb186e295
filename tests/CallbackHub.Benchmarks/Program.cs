using BenchmarkDotNet.Running;

// dotnet run -c Release --project tests/CallbackHub.Benchmarks -- --filter '*'   (see tests/CallbackHub.LoadTest/README.md)
BenchmarkSwitcher.FromAssembly(typeof(CallbackHub.Benchmarks.HotPathBenchmarks).Assembly).Run(args);
