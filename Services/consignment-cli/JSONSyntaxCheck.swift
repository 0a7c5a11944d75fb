/// Finds where JSON text first goes wrong, as line and column: Foundation's decoder says only that it
/// is invalid. A strict recursive-descent scan of RFC 8259; it checks, it builds nothing.
struct JSONSyntaxCheck {
    struct Failure: Error, CustomStringConvertible {
        var line: Int
        var column: Int
        var problem: String
        var description: String { "invalid JSON at line \(line), column \(column): \(problem)" }
    }

    private let bytes: [UInt8]
    private var offset = 0
    private var depth = 0

    /// - Returns: the first syntax error, or `nil` when the text is valid JSON.
    static func firstError(in bytes: [UInt8]) -> Failure? {
        var check = JSONSyntaxCheck(bytes: bytes)
        do throws(Failure) {
            check.skipSpace()
            try check.value()
            check.skipSpace()
            if check.offset < bytes.count { throw check.failure("unexpected text after the end of the JSON value") }
            return nil
        } catch {
            return error
        }
    }

    private init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    private func failure(_ problem: String) -> Failure {
        let before = bytes[..<min(offset, bytes.count)]
        let line = before.filter { $0 == UInt8(ascii: "\n") }.count + 1
        let lineStart = before.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0
        let column = String(decoding: bytes[lineStart..<min(offset, bytes.count)], as: UTF8.self).count + 1
        return Failure(line: line, column: column, problem: problem)
    }

    private var current: UInt8? { offset < bytes.count ? bytes[offset] : nil }

    private mutating func skipSpace() {
        while let byte = current, [0x20, 0x09, 0x0A, 0x0D].contains(byte) { offset += 1 }
    }

    private mutating func expect(_ literal: String) throws(Failure) {
        for byte in literal.utf8 {
            guard current == byte else { throw failure("expected \(literal)") }
            offset += 1
        }
    }

    private mutating func value() throws(Failure) {
        guard let byte = current else { throw failure("unexpected end of the file") }
        switch byte {
        case UInt8(ascii: "{"): try container(close: UInt8(ascii: "}"), keyed: true)
        case UInt8(ascii: "["): try container(close: UInt8(ascii: "]"), keyed: false)
        case UInt8(ascii: "\""): try string()
        case UInt8(ascii: "t"): try expect("true")
        case UInt8(ascii: "f"): try expect("false")
        case UInt8(ascii: "n"): try expect("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try number()
        default: throw failure("unexpected character \"\(String(decoding: [byte], as: UTF8.self))\"")
        }
    }

    private mutating func container(close: UInt8, keyed: Bool) throws(Failure) {
        depth += 1
        guard depth <= 256 else { throw failure("nested too deeply") }
        offset += 1
        skipSpace()
        if current == close {
            offset += 1
            depth -= 1
            return
        }
        while true {
            if keyed {
                guard current == UInt8(ascii: "\"") else { throw failure("expected a quoted field name") }
                try string()
                skipSpace()
                guard current == UInt8(ascii: ":") else { throw failure("expected \":\" after the field name") }
                offset += 1
                skipSpace()
            }
            try value()
            skipSpace()
            if current == UInt8(ascii: ",") {
                offset += 1
                skipSpace()
                continue
            }
            guard current == close else {
                throw failure("expected \",\" or \"\(String(decoding: [close], as: UTF8.self))\"")
            }
            offset += 1
            depth -= 1
            return
        }
    }

    private mutating func string() throws(Failure) {
        offset += 1
        while let byte = current {
            offset += 1
            switch byte {
            case UInt8(ascii: "\""): return
            case UInt8(ascii: "\\"):
                guard let escaped = current else { break }
                offset += 1
                if escaped == UInt8(ascii: "u") {
                    for _ in 0..<4 {
                        guard let hex = current, hex.isHexDigit else { throw failure("bad \\u escape") }
                        offset += 1
                    }
                } else if !Array("\"\\/bfnrt".utf8).contains(escaped) {
                    offset -= 1
                    throw failure("bad escape in a string")
                }
            case 0..<0x20:
                offset -= 1
                throw failure("control character in a string (a line break inside quotes?)")
            default: continue
            }
        }
        throw failure("unterminated string")
    }

    private mutating func number() throws(Failure) {
        if current == UInt8(ascii: "-") { offset += 1 }
        guard let first = current, first.isDigit else { throw failure("expected a digit") }
        offset += 1
        if first != UInt8(ascii: "0") { while current?.isDigit == true { offset += 1 } }
        if current == UInt8(ascii: ".") {
            offset += 1
            guard current?.isDigit == true else { throw failure("expected a digit after \".\"") }
            while current?.isDigit == true { offset += 1 }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            offset += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { offset += 1 }
            guard current?.isDigit == true else { throw failure("expected a digit in the exponent") }
            while current?.isDigit == true { offset += 1 }
        }
    }
}

extension UInt8 {
    fileprivate var isDigit: Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self) }
    fileprivate var isHexDigit: Bool {
        isDigit || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(self)
            || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(self)
    }
}
