import Foundation

/// What a client asks of a list: how many items, and where the previous page ended.
public struct PageRequest: Sendable, Hashable {
    /// The page size when a client sends 0 (proto3's "not set").
    public static let defaultSize = 50
    /// The largest page a client may ask for; larger requests are refused rather than silently cut.
    public static let maximumSize = 500
    /// The most bytes a page's items may take: under every client's 4 MiB message limit with room to spare. A
    /// page of large items ends early, with a next token, rather than fail in the client as too large.
    public static let maximumBytes = 2 << 20

    public var size: Int
    /// The decoded cursor of the previous page's `next_page_token`; empty for the first page.
    public var cursor: [String]

    public init(size: Int = PageRequest.defaultSize, cursor: [String] = []) {
        self.size = size
        self.cursor = cursor
    }

    /// A page request as it arrives on the wire.
    /// - Throws: `ShippyError` `.invalidArgument` for a negative or too large `page_size`, or a `page_token`
    ///   that this service did not issue.
    public init(pageSize: Int32, pageToken: String) throws(ShippyError) {
        guard pageSize >= 0 else { throw .invalidArgument("page_size must not be negative (got \(pageSize))") }
        guard pageSize <= Self.maximumSize else {
            throw .invalidArgument("page_size must be at most \(Self.maximumSize) (got \(pageSize))")
        }
        self.size = pageSize == 0 ? Self.defaultSize : Int(pageSize)
        self.cursor = try PageToken.decode(pageToken)
    }
}

/// One page of a list, and the token of the next one (empty on the last page).
public struct Page<Item: Sendable>: Sendable {
    public var items: [Item]
    public var nextToken: String

    public init(items: [Item], nextToken: String = "") {
        self.items = items
        self.nextToken = nextToken
    }

    /// A page from `size + 1` items fetched in order: the extra item proves a next page exists, and the
    /// cursor of the last item kept becomes its token. With `bytes` (an item's encoded size, about), the page
    /// also ends before its items pass `PageRequest.maximumBytes`, keeping at least one.
    public init(fetched: [Item], size: Int, bytes: ((Item) -> Int)? = nil, cursor: (Item) -> [String]) {
        var items = Array(fetched.prefix(size))
        if let bytes {
            var total = 0
            let fitting = items.prefix { item in
                total += bytes(item)
                return total <= PageRequest.maximumBytes
            }
            items = Array(items.prefix(max(1, fitting.count)))
        }
        self.items = items
        self.nextToken = fetched.count > items.count ? items.last.map { PageToken.encode(cursor($0)) } ?? "" : ""
    }

    /// The same page with each item transformed (the sort key a repository fetched beside it dropped).
    public func map<T: Sendable>(_ transform: (Item) -> T) -> Page<T> {
        Page<T>(items: items.map(transform), nextToken: nextToken)
    }
}

/// Page tokens are opaque to clients: the sort key of the last item seen, base64url-encoded.
public enum PageToken {
    private static let separator: Character = "\u{1F}"

    public static func encode(_ fields: [String]) -> String {
        Data(fields.joined(separator: String(separator)).utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// What a client is told for a token that no page of this list issued.
    public static let notIssued = ShippyError.invalidArgument(
        "page_token is not a token this service issued; start again without it")

    /// - Throws: `ShippyError` `.invalidArgument` when the token is not one that `encode` made.
    public static func decode(_ token: String) throws(ShippyError) -> [String] {
        guard !token.isEmpty else { return [] }
        var base64 = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        guard token.utf8.count <= 512, let bytes = Data(base64Encoded: base64),
            let text = String(data: bytes, encoding: .utf8)
        else { throw notIssued }
        return text.split(separator: separator, omittingEmptySubsequences: false).map(String.init)
    }
}
