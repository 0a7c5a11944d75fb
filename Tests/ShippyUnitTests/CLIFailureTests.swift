import GRPCCore
import ShippyCLI
import ShippyDomain
import ShippyRuntime
import ShippyTestSupport
import Testing

/// How a CLI turns a status into one line and an exit code: from the status code and its metadata, never
/// from the message's text.
@Suite struct CLIFailureTests {
    @Test func aFailedDependencyNamedInMetadataIsPassedOnAsItIs() {
        let error = RPCError(
            code: .unavailable, message: "vessel-service at 127.0.0.1:50052 is unavailable",
            metadata: [ShippyError.dependencyMetadataKey: "vessel-service"])
        let failure = CLIFailure(error, service: "consignment-service at 127.0.0.1:50051")
        #expect(failure.status == CLIFailure.unavailable)
        #expect(failure.message == "vessel-service at 127.0.0.1:50052 is unavailable")
    }

    @Test func theServiceItselfUnreachableIsSaidSoEvenWhenTheTextNamesAnotherService() {
        let error = RPCError(code: .unavailable, message: "vessel-service at x is unavailable")
        let failure = CLIFailure(error, service: "consignment-service at 127.0.0.1:50051")
        #expect(failure.status == CLIFailure.unavailable)
        #expect(failure.message.hasPrefix("consignment-service at 127.0.0.1:50051 is unavailable"))
    }

    @Test(arguments: [
        (RPCError.Code.invalidArgument, CLIFailure.invalidInput), (.alreadyExists, CLIFailure.alreadyExists),
        (.unauthenticated, CLIFailure.notAuthenticated), (.permissionDenied, CLIFailure.notAuthenticated),
        (.resourceExhausted, CLIFailure.invalidInput), (.deadlineExceeded, CLIFailure.unavailable),
        (.internalError, CLIFailure.software),
    ])
    func everyStatusCodeHasItsExitCode(code: RPCError.Code, status: Int32) {
        #expect(CLIFailure(RPCError(code: code, message: "m"), service: "s").status == status)
    }

    @Test func theDependencyOfAShippyErrorTravelsAsMetadata() {
        let error = ShippyError(.unavailable, "vessel-service at x is unavailable", dependency: "vessel-service")
        #expect(
            error.rpcErrorMetadata[stringValues: ShippyError.dependencyMetadataKey].map { $0 } == ["vessel-service"])
        #expect(ShippyError(.unavailable, "MongoDB is down").rpcErrorMetadata.isEmpty)
    }
}
