import Foundation
import ShippyCLI
import ShippyContracts

/// The JSON file the original shippy CLI read:
/// `{"description": …, "weight": …, "containers": [{"customer_id": …, "user_id": …, "origin": …}]}`.
struct ConsignmentFile: Decodable {
    struct Container: Decodable {
        var customerID: String?
        var userID: String?
        var origin: String?

        enum CodingKeys: String, CodingKey {
            case customerID = "customer_id"
            case userID = "user_id"
            case origin
        }
    }

    var description: String?
    var weight: Int32?
    var containers: [Container]?

    /// Reads and decodes `path` (`-` for standard input).
    /// - Throws: `CLIFailure` 66 when the file cannot be read, 65 for invalid JSON (with line and column) or
    ///   a field of the wrong type (with its path).
    static func load(_ path: String) throws -> ConsignmentFile {
        let data: Data
        if path == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            guard access(path, R_OK) == 0, let contents = FileManager.default.contents(atPath: path) else {
                // A folder this user may not enter hides the file too (EACCES, not ENOENT): say which.
                let problem =
                    errno == ENOENT
                    ? "no such file (pass the consignment JSON file as the first argument)"
                    : "cannot be read (\(String(cString: strerror(errno)))); pipe it in instead: consignment-cli - TOKEN < \(path)"
                throw CLIFailure(status: CLIFailure.noInput, "\(path): \(problem)")
            }
            data = contents
        }
        if let syntax = JSONSyntaxCheck.firstError(in: Array(data)) {
            throw CLIFailure(status: CLIFailure.invalidInput, "\(path): \(syntax)")
        }
        do {
            return try JSONDecoder().decode(ConsignmentFile.self, from: data)
        } catch let error as DecodingError {
            throw CLIFailure(status: CLIFailure.invalidInput, "\(path): \(describe(error, in: data))")
        } catch {
            throw CLIFailure(status: CLIFailure.invalidInput, "\(path): not valid JSON")
        }
    }

    /// One line that says where the file is wrong.
    static func describe(_ error: DecodingError, in data: Data) -> String {
        func field(_ path: [any CodingKey]) -> String {
            path.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().trimmingPrefix(".").description
        }
        switch error {
        case .typeMismatch(let type, let context):
            let path = context.codingPath.isEmpty ? "the file" : "field \(field(context.codingPath))"
            return "\(path) must be \(typeName(type))"
        case .valueNotFound(let type, let context):
            return "field \(field(context.codingPath)) must be \(typeName(type)), not null"
        case .keyNotFound(let key, let context):
            return "field \(field(context.codingPath + [key])) is missing"
        case .dataCorrupted(let context):
            // Syntax errors were found before decoding; what remains is a number that does not fit.
            let path = context.codingPath.isEmpty ? "a field" : "field \(field(context.codingPath))"
            return "\(path) holds a number out of range (weights are whole numbers up to 2147483647)"
        @unknown default:
            return "invalid JSON"
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int32.Type: "a whole number (a 32-bit integer)"
        case is [Container].Type: "a list of containers"
        case is [String: Any].Type: "an object {…}"
        default: "of another type (\(type))"
        }
    }

    /// The request to send; the server fills in ids, the vessel and the owner.
    var request: Consignment_Consignment {
        .with { consignment in
            consignment.description_p = description ?? ""
            consignment.weight = weight ?? 0
            consignment.containers = (containers ?? []).map { container in
                .with {
                    $0.customerID = container.customerID ?? ""
                    $0.userID = container.userID ?? ""
                    $0.origin = container.origin ?? ""
                }
            }
        }
    }
}
