import ShippyContracts
import ShippyDomain

/// A small deterministic generator, so a failing malformed payload can be reproduced.
package struct SeededGenerator: RandomNumberGenerator {
    package var state: UInt64
    package init(seed: UInt64) { state = seed }
    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The consignment of the original tutorial's `consignment.json`: three containers, 55 t.
package let sampleConsignment = Consignment_Consignment.with {
    $0.description_p = "This is a test consignment"
    $0.weight = 55_000
    $0.userID = "someone-else"
    $0.containers = ["cust001", "cust002", "cust005"].map { customer in
        .with {
            $0.customerID = customer; $0.origin = "Manchester, United Kingdom"; $0.userID = "user001"
        }
    }
}

extension Consignment_Consignment {
    /// The consignment a service answered, as the domain type the stores hold.
    package var toDomain: Consignment {
        Consignment(
            id: id, description: description_p, weight: weight,
            containers: containers.map {
                Container(id: $0.id, customerID: $0.customerID, origin: $0.origin, userID: $0.userID)
            },
            vesselID: vesselID, userID: userID)
    }
}
