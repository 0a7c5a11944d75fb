/// Settings that several executables read (the services, the gateway, the CLIs, shippy-bench), each declared
/// here once with one help text, so that a key means the same thing wherever it is set.
public enum SharedSettings {
    public static let userServiceAddress = Setting.text(
        "user.service.address", default: "127.0.0.1:50053", "user-service address, host:port or dns:///name:port.")
    public static let consignmentServiceAddress = Setting.text(
        "consignment.service.address", default: "127.0.0.1:50051",
        "consignment-service address, host:port or dns:///name:port.")
    public static let vesselServiceAddress = Setting.text(
        "vessel.service.address", default: "127.0.0.1:50052", "vessel-service address, host:port or dns:///name:port.")
    /// Read by the services that count clients (user-service's login throttle).
    public static let trustedGateways = Setting.addresses(
        "trusted.gateways",
        "IP addresses and networks of the gateways whose word about a client's address is taken (comma-separated); "
            + "from any other peer, the peer is the client.")
    public static let natsURL = Setting.text(
        "nats.url", default: "nats://127.0.0.1:4222",
        "NATS server with JetStream: user- and consignment-service publish their events there; email-service and "
            + "the gateway's live streams read them.")
    public static let natsAuthorities = Setting<String?>.optionalText(
        "nats.ca",
        "PEM file of the authorities NATS' certificate must come from; with it (or a tls:// URL) the connection is "
            + "TLS, verified for the host dialled.")
}
