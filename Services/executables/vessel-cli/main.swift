import VesselCLI

await vesselCLIMain()
