import Foundation
import ShippyCLI
import ShippyTestSupport
import Testing

@testable import ConsignmentCLI

/// The consignment-cli's reading of JSON files: every mistake is one line that says where.
@Suite struct ConsignmentFileTests {
    func load(_ text: String) throws -> ConsignmentFile {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(
            "consignment-\(UUID().uuidString).json"
        ).path
        FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try ConsignmentFile.load(path)
    }

    func expectFailure(_ text: String, status: Int32, _ message: String) {
        #expect {
            _ = try load(text)
        } throws: { error in
            guard let failure = error as? CLIFailure else { return false }
            return failure.status == status && failure.message.hasSuffix(message)
        }
    }

    @Test func theSampleFileReadsAsTheOriginalShape() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let sample = try ConsignmentFile.load(root.appendingPathComponent("consignment.json").path).request
        #expect(sample.description_p == "This is a test consignment" && sample.weight == 55_000)
        #expect(sample.containers.map(\.customerID) == ["cust001", "cust002", "cust005"])
    }

    @Test func invalidJSONNamesLineAndColumn() {
        expectFailure(
            "{\n  \"description\": \"x\",\n  \"weight\": 5,,\n}", status: 65,
            "invalid JSON at line 3, column 15: expected a quoted field name")
        expectFailure(
            "{\"description\": \"x\"", status: 65, "invalid JSON at line 1, column 20: expected \",\" or \"}\"")
        expectFailure("", status: 65, "invalid JSON at line 1, column 1: unexpected end of the file")
        expectFailure(
            "{\"a\": \"line\nbreak\"}", status: 65,
            "line 1, column 12: control character in a string (a line break inside quotes?)")
    }

    @Test func fieldOfTheWrongTypeIsNamed() {
        expectFailure("{\"weight\": \"heavy\"}", status: 65, "field weight must be a whole number (a 32-bit integer)")
        expectFailure("{\"containers\": [{\"origin\": 7}]}", status: 65, "field containers[0].origin must be a string")
        expectFailure(
            "{\"weight\": 1e12}", status: 65, "holds a number out of range (weights are whole numbers up to 2147483647)"
        )
        expectFailure("[1, 2]", status: 65, "the file must be an object {…}")
    }

    @Test func missingFileIsNoInput() {
        #expect {
            _ = try ConsignmentFile.load("/nonexistent/consignment.json")
        } throws: { error in
            (error as? CLIFailure)?.status == 66
        }
    }

    @Test func syntaxCheckAcceptsValidJSON() {
        for text in [
            "{}", "[]", "0", "-1.5e+3", "\"\\u00e9\\n\"", "{\"a\": [true, false, null, {\"b\": []}]}", " {\"x\": 1} ",
        ] {
            #expect(JSONSyntaxCheck.firstError(in: Array(text.utf8)) == nil, "\(text)")
        }
        for text in ["{", "01", "[1,]", "{\"a\" 1}", "tru", "\"\\x\"", "1.", String(repeating: "[", count: 300)] {
            #expect(JSONSyntaxCheck.firstError(in: Array(text.utf8)) != nil, "\(text)")
        }
    }
}
