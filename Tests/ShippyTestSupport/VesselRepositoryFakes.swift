import ShippyDomain
import ShippyStorage

/// A test repository that stands in for one behaviour (a gated call, a store that is down).
package protocol PartialVesselRepositoryFake: VesselRepository {}

/// What such fakes do for the booking methods they do not care about: fail, so that a test that reaches one
/// by mistake sees it. (Constrained to the marker protocol, so that calls on real repositories never land here.)
package extension PartialVesselRepositoryFake {
    package func list(_ page: PageRequest) async throws(ShippyError) -> Page<Vessel> { throw Self.notFaked }
    package func booking(consignmentID: String) async throws(ShippyError) -> Booking? { throw Self.notFaked }
    package func book(_ request: BookingRequest, expiresAt: Int64) async throws(ShippyError) -> Booking {
        throw Self.notFaked
    }
    package func confirm(consignmentID: String, attempt: Int64) async throws(ShippyError) -> Booking {
        throw Self.notFaked
    }
    package func release(consignmentID: String, attempt: Int64, ownerID: String) async throws(ShippyError) -> Booking {
        throw Self.notFaked
    }
    package func cancel(consignmentID: String) async throws(ShippyError) -> Booking { throw Self.notFaked }
    package func releaseExpired(now: Int64) async throws(ShippyError) -> Int { 0 }

    private static var notFaked: ShippyError { ShippyError(.internal, "\(Self.self) does not fake this method") }
}
