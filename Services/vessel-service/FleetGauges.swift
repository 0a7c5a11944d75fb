import Logging
import Metrics
import ShippyDomain
import ShippyRuntime
import ShippyStorage

/// The room each vessel has left, as `shippy_vessel_room_containers{vessel}` and `shippy_vessel_room_weight{vessel}`,
/// read from the fleet every five seconds (every replica reads the same store, so any replica's figure is right).
enum FleetGauges {
    static func refresher(_ repository: any VesselRepository, logger: Logger) -> PeriodicWork {
        PeriodicWork("the fleet's room", logger: logger) {
            var page = try PageRequest(pageSize: Int32(PageRequest.maximumSize), pageToken: "")
            while true {
                let vessels = try await repository.list(page)
                for vessel in vessels.items {
                    Gauge(label: "shippy_vessel_room_containers", dimensions: [("vessel", vessel.id)])
                        .record(vessel.roomCapacity)
                    Gauge(label: "shippy_vessel_room_weight", dimensions: [("vessel", vessel.id)]).record(
                        vessel.roomWeight)
                }
                guard !vessels.nextToken.isEmpty else { return }
                page = try PageRequest(pageSize: Int32(PageRequest.maximumSize), pageToken: vessels.nextToken)
            }
        }
    }
}
