import Foundation
import ShippyDomain
import ShippyIdentity
import Testing
import Yams

/// The OpenAPI document states the rules the services enforce, and no others: each field of a request body is held
/// here to the domain's constant or rule (schemathesis, in `make test`, then sends what the document allows and
/// what it does not, and checks the answers agree).
@Suite struct ContractTests {
    /// The document as committed, read anew for each question (it is small).
    static var document: [String: Any] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Services/api-gateway/openapi.yaml")
        let text = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
        return ((try? Yams.load(yaml: text)) as? [String: Any]) ?? [:]
    }

    static func schema(_ name: String) -> [String: Any] {
        let components = document["components"] as? [String: Any]
        return (components?["schemas"] as? [String: Any])?[name] as? [String: Any] ?? [:]
    }

    static func property(_ schema: String, _ name: String) -> [String: Any]? {
        (Self.schema(schema)["properties"] as? [String: Any])?[name] as? [String: Any]
    }

    struct TextField: CustomTestStringConvertible, Sendable {
        var schema: String
        var property: String
        var minLength: Int?
        var maxLength: Int?
        var pattern: String?
        var testDescription: String { "\(schema).\(property)" }
    }

    static let required = TextRules.pattern(required: true)
    static let optional = TextRules.pattern(required: false)
    /// Every string field of every request body, with the rule the services hold it to.
    static let textFields: [TextField] = [
        .init(
            schema: "SignUp", property: "name", minLength: 1, maxLength: NewUser.maximumFieldLength, pattern: required),
        .init(schema: "SignUp", property: "company", maxLength: NewUser.maximumFieldLength, pattern: optional),
        .init(schema: "SignUp", property: "email", maxLength: EmailAddress.maximumBytes),
        .init(
            schema: "SignUp", property: "password", minLength: NewUser.minimumPasswordLength,
            maxLength: NewUser.maximumPasswordLength, pattern: "^[^\\u0000]*$"),
        .init(schema: "Credentials", property: "email", maxLength: EmailAddress.maximumBytes),
        .init(schema: "Credentials", property: "password", minLength: 1, maxLength: NewUser.maximumPasswordLength),
        .init(schema: "RefreshRequest", property: "refresh_token", minLength: 1, maxLength: RefreshToken.maximumLength),
        .init(schema: "NewContainer", property: "id", maxLength: Consignment.maximumFieldLength, pattern: optional),
        .init(
            schema: "NewContainer", property: "customer_id", minLength: 1, maxLength: Consignment.maximumFieldLength,
            pattern: required),
        .init(
            schema: "NewContainer", property: "origin", minLength: 1, maxLength: Consignment.maximumFieldLength,
            pattern: required),
        // Ignored (the owner is the token's user): any string.
        .init(schema: "NewContainer", property: "user_id"),
        .init(
            schema: "NewConsignment", property: "description", minLength: 1,
            maxLength: Consignment.maximumDescriptionLength, pattern: required),
        // Absent or empty: vessel-service assigns one.
        .init(schema: "NewVessel", property: "id", maxLength: Vessel.maximumIDLength, pattern: Vessel.idPattern),
        .init(
            schema: "NewVessel", property: "name", minLength: 1, maxLength: Vessel.maximumNameLength, pattern: required),
    ]

    @Test(arguments: textFields)
    func eachTextFieldStatesTheDomainsRule(_ field: TextField) throws {
        let property = try #require(Self.property(field.schema, field.property), "no \(field.testDescription)")
        // An optional field takes null too, as the decoder does.
        let optional = !((Self.schema(field.schema)["required"] as? [String]) ?? []).contains(field.property)
        if optional {
            #expect(property["type"] as? [String] == ["string", "null"])
        } else {
            #expect(property["type"] as? String == "string")
        }
        #expect(property["minLength"] as? Int == field.minLength)
        #expect(property["maxLength"] as? Int == field.maxLength)
        #expect(property["pattern"] as? String == field.pattern)
    }

    @Test func everyStringFieldOfARequestBodyIsInTheTable() {
        let requestSchemas = ["SignUp", "Credentials", "RefreshRequest", "NewContainer", "NewConsignment", "NewVessel"]
        let listed = Set(Self.textFields.map(\.testDescription))
        for name in requestSchemas {
            #expect(Self.schema(name)["additionalProperties"] as? Bool == false, "\(name) takes unknown fields")
            for case (let property, let value as [String: Any]) in Self.schema(name)["properties"] as? [String: Any]
                ?? [:]
            where value["type"] as? String == "string" || (value["type"] as? [String])?.first == "string" {
                #expect(listed.contains("\(name).\(property)"), "\(name).\(property) has no rule here")
            }
        }
    }

    @Test func theOtherBoundsAreTheDomains() throws {
        let containers = try #require(Self.property("NewConsignment", "containers"))
        #expect(containers["minItems"] as? Int == 1)
        #expect(containers["maxItems"] as? Int == Consignment.maximumContainers)
        let weight = try #require(Self.property("NewConsignment", "weight"))
        #expect(weight["maximum"] as? Int == Int(Consignment.maximumWeight))
        #expect(Consignment.maximumGrossMassPerContainer == 30_480)
        #expect((weight["description"] as? String)?.contains("at most 30,480 kg per container") == true)
        for (schema, property) in [
            ("NewConsignment", "weight"), ("NewVessel", "capacity"), ("NewVessel", "max_weight"),
        ] {
            let number = try #require(Self.property(schema, property))
            #expect(number["minimum"] as? Int == 1, "\(schema).\(property)")
            #expect(number["format"] as? String == "int32", "\(schema).\(property)")
        }
        let components = Self.document["components"] as? [String: Any]
        let id = try #require((components?["parameters"] as? [String: Any])?["ConsignmentId"] as? [String: Any])
        let idSchema = try #require(id["schema"] as? [String: Any])
        #expect(idSchema["maxLength"] as? Int == BookingRequest.maximumIDLength && idSchema["minLength"] as? Int == 1)
        #expect(idSchema["pattern"] as? String == Self.required)
        let paths = Self.document["paths"] as? [String: Any]
        let create = (paths?["/v1/consignments"] as? [String: Any])?["post"] as? [String: Any]
        let header = try #require(
            (create?["parameters"] as? [[String: Any]])?.first { $0["name"] as? String == "Idempotency-Key" })
        let schema = try #require(header["schema"] as? [String: Any])
        #expect(schema["pattern"] as? String == IdempotencyKeyRule.pattern)
        #expect(schema["maxLength"] as? Int == IdempotencyKeyRule.maximumLength)
    }

    /// The patterns say what `TextRules.check` and the vessel id rule do, at the edges of every range they name.
    @Test func thePatternsAcceptWhatTheDomainAccepts() throws {
        var samples = ["a", "", " a ", "é", "e\u{301}", "\u{301}", "船", "🚢", "a\u{200B}b", "\u{FEFF}"]
        for range in TextRules.controls + TextRules.blanks {
            let (low, high) = (Int(range.lowerBound), Int(range.upperBound))
            for value in [low, high, low - 1, high + 1] where value >= 0 {
                guard let scalar = Unicode.Scalar(UInt32(value)) else { continue }
                samples += [String(scalar), "a" + String(scalar), String(scalar) + "a"]
            }
        }
        for sample in samples {
            for (required, pattern) in [(true, Self.required), (false, Self.optional)] {
                let matches = try Self.matches(pattern, sample)
                let accepted = (try? TextRules.check(sample, field: "f", maximumLength: 10, required: required)) != nil
                #expect(matches == accepted, "\(sample.unicodeScalars.map { $0.value }) required: \(required)")
            }
        }
        for sample in ["vessel001", "a.b_c-D", "a b", "a/b", "é", "a:b"] {
            let accepted = (try? Vessel(id: sample, name: "V", capacity: 1, maxWeight: 1).validate()) != nil
            #expect(try Self.matches(Vessel.idPattern, sample) == accepted, "\(sample)")
        }
    }

    /// As JSON Schema's dialect (ECMA-262) reads `pattern`: there `$` is the end of the text, where ICU's (and
    /// Python's) also matches before a line break that ends it; so a match must span the whole text.
    static func matches(_ pattern: String, _ text: String) throws -> Bool {
        let expression = try NSRegularExpression(pattern: pattern)
        let range = NSRange(text.startIndex..., in: text)
        return expression.firstMatch(in: text, range: range)?.range == range
    }
}
