import VesselService

await vesselServiceMain()
