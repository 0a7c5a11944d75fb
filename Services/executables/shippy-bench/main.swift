import ShippyBench

await shippyBenchMain()
