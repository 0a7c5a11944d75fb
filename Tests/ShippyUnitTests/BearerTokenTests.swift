import GRPCCore
import ShippyDomain
import ShippyRuntime
import Testing

/// Where a call's token is read from: `authorization: Bearer …` or the original's `token: …`, blanks around it
/// dropped, and a clear refusal when neither is there.
@Suite struct BearerTokenTests {
    @Test(arguments: [
        ("authorization", "Bearer abc.def.ghi", "abc.def.ghi"),
        ("authorization", "bearer   abc.def.ghi  ", "abc.def.ghi"),
        ("authorization", "BEARER \t abc.def.ghi\t", "abc.def.ghi"),
        ("authorization", "Bearer    ", ""),
        ("token", "  abc.def.ghi ", "abc.def.ghi"),
        ("token", "abc.def.ghi", "abc.def.ghi"),
        ("token", "", ""),
    ])
    func tokenIsReadWithoutTheBlanksAroundIt(key: String, value: String, token: String) throws {
        let metadata: Metadata = [key: .string(value)]
        #expect(try AuthInterceptor.token(in: metadata) == token)
    }

    @Test(arguments: [Metadata(), ["authorization": "Basic dXNlcjpwYXNz"], ["authorization": "Bearer"]])
    func noBearerTokenIsUnauthenticatedAndSaysWhatToSend(metadata: Metadata) {
        #expect {
            _ = try AuthInterceptor.token(in: metadata)
        } throws: { error in
            let error = error as? ShippyError
            return error?.code == .unauthenticated && error?.message.contains("authorization: Bearer <token>") == true
        }
    }
}
