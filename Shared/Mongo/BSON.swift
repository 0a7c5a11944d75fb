import CMongoc
import ShippyDomain

/// A BSON value of the kinds our documents use, built and read directly through libbson (no JSON detour).
public indirect enum BSONValue: Sendable, Hashable {
    case string(String)
    case int32(Int32)
    case int64(Int64)
    case double(Double)
    case bool(Bool)
    case null
    case document(BSONFields)
    case array([BSONValue])

    /// The value as an `Int32` when it is a number that fits; stored numbers may widen in other writers.
    public var int32Value: Int32? {
        switch self {
        case .int32(let value): value
        case .int64(let value): Int32(exactly: value)
        case .double(let value): Int32(exactly: value)
        default: nil
        }
    }

    /// The value as an `Int64` when it is a whole number.
    public var int64Value: Int64? {
        switch self {
        case .int32(let value): Int64(value)
        case .int64(let value): value
        case .double(let value): Int64(exactly: value)
        default: nil
        }
    }

    public var stringValue: String? {
        if case .string(let value) = self { value } else { nil }
    }

    public var boolValue: Bool? {
        if case .bool(let value) = self { value } else { nil }
    }
}

/// An ordered list of fields: BSON documents keep key order, and commands depend on it.
public struct BSONFields: Sendable, Hashable, ExpressibleByDictionaryLiteral {
    public var fields: [(key: String, value: BSONValue)]

    public init(dictionaryLiteral elements: (String, BSONValue)...) {
        self.fields = elements.map { (key: $0.0, value: $0.1) }
    }

    public init(_ fields: [(key: String, value: BSONValue)]) {
        self.fields = fields
    }

    public subscript(key: String) -> BSONValue? {
        fields.first { $0.key == key }?.value
    }

    public static func == (lhs: BSONFields, rhs: BSONFields) -> Bool {
        lhs.fields.elementsEqual(rhs.fields) { $0.key == $1.key && $0.value == $1.value }
    }

    public func hash(into hasher: inout Hasher) {
        for field in fields {
            hasher.combine(field.key)
            hasher.combine(field.value)
        }
    }
}

extension BSONFields {
    /// The fields in BSON, as libbson encodes them for the server (what `make bench-micro` measures).
    public var bsonBytes: [UInt8] {
        withBSON { document in
            let data = bson_get_data(document)!
            // A BSON document starts with its own length, little-endian.
            let length = Int(UInt32(littleEndian: UnsafeRawPointer(data).loadUnaligned(as: UInt32.self)))
            return Array(UnsafeBufferPointer(start: data, count: length))
        }
    }

    /// Reads BSON bytes, as a reply's documents are read.
    /// - Throws: `ShippyError` `.invalidArgument` when the bytes are not one BSON document.
    public init(bsonBytes bytes: [UInt8]) throws(ShippyError) {
        guard let document = bytes.withUnsafeBufferPointer({ bson_new_from_data($0.baseAddress, $0.count) }) else {
            throw ShippyError(.invalidArgument, "not a BSON document")
        }
        defer { bson_destroy(document) }
        self = BSONDocument.fields(of: document)
    }

    /// Builds the fields as a `bson_t` that lives exactly as long as `body` runs.
    func withBSON<T>(_ body: (OpaquePointer) throws -> T) rethrows -> T {
        let document = bson_new()!
        defer { bson_destroy(document) }
        for (key, value) in fields { BSONDocument.append(key, value, to: document) }
        return try body(document)
    }
}

/// libbson plumbing: writing values into and reading fields out of `bson_t` documents.
enum BSONDocument {
    static func append(_ key: String, _ value: BSONValue, to document: OpaquePointer) {
        let length = Int32(key.utf8.count)
        switch value {
        case .string(let string):
            bson_append_utf8(document, key, length, string, Int32(string.utf8.count))
        case .int32(let number):
            bson_append_int32(document, key, length, number)
        case .int64(let number):
            bson_append_int64(document, key, length, number)
        case .double(let number):
            bson_append_double(document, key, length, number)
        case .bool(let flag):
            bson_append_bool(document, key, length, flag)
        case .null:
            bson_append_null(document, key, length)
        case .document(let fields):
            fields.withBSON { child in _ = bson_append_document(document, key, length, child) }
        case .array(let values):
            let elements = BSONFields(values.enumerated().map { (key: String($0.offset), value: $0.element) })
            elements.withBSON { child in _ = bson_append_array(document, key, length, child) }
        }
    }

    /// Reads every field of a document that libbson owns (a cursor's current document, a reply).
    static func fields(of document: OpaquePointer) -> BSONFields {
        withIterator { iterator in
            bson_iter_init(iterator, document) ? readFields(iterator) : BSONFields([])
        }
    }

    /// Swift sees bson_iter_t as opaque (it is 128-byte aligned), so the shim tells its size.
    private static func withIterator<T>(_ body: (OpaquePointer) -> T) -> T {
        let raw = UnsafeMutableRawPointer.allocate(
            byteCount: shippy_bson_iter_size(),
            alignment: shippy_bson_iter_alignment()
        )
        defer { raw.deallocate() }
        return body(OpaquePointer(raw))
    }

    private static func readFields(_ iterator: OpaquePointer) -> BSONFields {
        var fields: [(key: String, value: BSONValue)] = []
        while bson_iter_next(iterator) {
            let key = String(cString: bson_iter_key(iterator))
            fields.append((key: key, value: readValue(iterator)))
        }
        return BSONFields(fields)
    }

    private static func readValue(_ iterator: OpaquePointer) -> BSONValue {
        switch bson_iter_type(iterator) {
        case BSON_TYPE_UTF8:
            var length: UInt32 = 0
            guard let bytes = bson_iter_utf8(iterator, &length) else { return .null }
            let buffer = UnsafeRawBufferPointer(start: bytes, count: Int(length))
            return .string(String(decoding: buffer, as: UTF8.self))
        case BSON_TYPE_INT32:
            return .int32(bson_iter_int32(iterator))
        case BSON_TYPE_INT64:
            return .int64(bson_iter_int64(iterator))
        case BSON_TYPE_DOUBLE:
            return .double(bson_iter_double(iterator))
        case BSON_TYPE_BOOL:
            return .bool(bson_iter_bool(iterator))
        case BSON_TYPE_DOCUMENT, BSON_TYPE_ARRAY:
            let isArray = bson_iter_type(iterator) == BSON_TYPE_ARRAY
            return withIterator { child in
                guard bson_iter_recurse(iterator, child) else { return .null }
                let fields = readFields(child)
                return isArray ? .array(fields.fields.map(\.value)) : .document(fields)
            }
        default:
            // Types our documents never hold (ObjectId, dates, binary) read as null rather than failing.
            return .null
        }
    }
}

extension BSONValue: ExpressibleByStringLiteral, ExpressibleByDictionaryLiteral {
    /// `"reserved"` for `.string("reserved")` in filters and updates.
    public init(stringLiteral value: String) {
        self = .string(value)
    }

    /// `["$gte": .int32(3)]` for a nested document in filters and updates.
    public init(dictionaryLiteral elements: (String, BSONValue)...) {
        self = .document(BSONFields(elements.map { (key: $0.0, value: $0.1) }))
    }
}
