import Foundation
import Testing

/// Keeps the documentation's code honest: every ```swift block in the DocC catalog
/// (`Sources/MLS/MLS.docc`) and in the MLS library's `///` comments must be, byte for
/// byte, a region of a test in this folder that runs:
///
///     // snippet: NAME
///     ...the code the article shows...
///     // end-snippet
///
/// (compared without the region's common indentation), and every region must appear in
/// the documentation. So a snippet that stops compiling fails the build, one that stops
/// working fails its test, and an edit to either copy alone fails this test.
@Suite struct DocumentationSnippetTests {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    struct Block: CustomStringConvertible {
        var file: String
        var line: Int
        var code: String
        var description: String { "\(file):\(line)" }
    }

    @Test func everyDocumentedSwiftBlockIsATestedSnippet() throws {
        let snippets = try Self.snippets()
        let blocks = try Self.documentedBlocks()
        #expect(blocks.count >= snippets.count, "the catalog and the doc comments hold no Swift blocks")
        for block in blocks {
            let match = snippets.first { $0.code == block.code }
            #expect(
                match != nil,
                """
                \(block) is not a snippet of Tests/MLSTests/Documentation; it differs from the nearest one, \
                \(Self.nearest(block, in: snippets)), at: \(Self.firstDifference(block, Self.nearest(block, in: snippets)))
                """
            )
        }
        for snippet in snippets {
            #expect(blocks.contains { $0.code == snippet.code }, "\(snippet) is in no article or doc comment")
        }
    }

    /// The check itself notices a changed line, so a parser that found nothing cannot pass.
    @Test func aChangedLineIsNoticed() throws {
        let snippets = try Self.snippets()
        #expect(snippets.count >= 8)
        let tampered = try #require(snippets.first).code.replacingOccurrences(of: "let ", with: "var ")
        #expect(!snippets.contains { $0.code == tampered })
    }

    static func snippets() throws -> [Block] {
        let folder = root.appendingPathComponent("Tests/MLSTests/Documentation")
        var found: [Block] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        where name.hasSuffix(".swift") {
            let lines = try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
                .components(separatedBy: "\n")
            var start: Int?
            for (index, line) in lines.enumerated() {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if trimmed.hasPrefix("// snippet: ") {
                    start = index + 1
                } else if trimmed == "// end-snippet", let first = start {
                    found.append(Block(file: name, line: first, code: dedented(lines[first..<index])))
                    start = nil
                }
            }
        }
        return found
    }

    /// The catalog's ```swift blocks, and those in `///` comments under Sources/MLS.
    static func documentedBlocks() throws -> [Block] {
        var found: [Block] = []
        let files = FileManager.default.enumerator(atPath: root.appendingPathComponent("Sources/MLS").path)
        while let relative = files?.nextObject() as? String {
            let isArticle = relative.hasSuffix(".md")
            guard isArticle || relative.hasSuffix(".swift") else { continue }
            let text = try String(
                contentsOf: root.appendingPathComponent("Sources/MLS").appendingPathComponent(relative),
                encoding: .utf8
            )
            found += swiftBlocks(in: text, file: "Sources/MLS/" + relative, commentPrefix: isArticle ? nil : "///")
        }
        return found
    }

    static func swiftBlocks(in text: String, file: String, commentPrefix: String?) -> [Block] {
        var found: [Block] = []
        var start: Int?
        var lines: [String] = []
        for (index, raw) in text.components(separatedBy: "\n").enumerated() {
            var line = raw
            if let prefix = commentPrefix {
                let trimmed = raw.trimmingCharacters(in: .whitespaces)
                guard trimmed.hasPrefix(prefix) else {
                    start = nil
                    continue
                }
                line = String(trimmed.dropFirst(prefix.count))
                if line.hasPrefix(" ") { line.removeFirst() }
            }
            if start == nil, line.trimmingCharacters(in: .whitespaces) == "```swift" {
                start = index + 1
                lines = []
            } else if let first = start, line.trimmingCharacters(in: .whitespaces) == "```" {
                found.append(Block(file: file, line: first + 1, code: dedented(lines[...])))
                start = nil
            } else if start != nil {
                lines.append(line)
            }
        }
        return found
    }

    static func dedented(_ lines: ArraySlice<String>) -> String {
        let indent =
            lines.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
            .map { $0.prefix { $0 == " " }.count }.min() ?? 0
        return lines.map { String($0.dropFirst(min(indent, $0.prefix { $0 == " " }.count))) }
            .joined(separator: "\n")
    }

    static func nearest(_ block: Block, in snippets: [Block]) -> Block {
        let lines = Set(block.code.components(separatedBy: "\n"))
        return snippets.max {
            lines.intersection($0.code.components(separatedBy: "\n")).count
                < lines.intersection($1.code.components(separatedBy: "\n")).count
        } ?? Block(file: "none", line: 0, code: "")
    }

    static func firstDifference(_ a: Block, _ b: Block) -> String {
        let left = a.code.components(separatedBy: "\n")
        let right = b.code.components(separatedBy: "\n")
        for index in 0..<max(left.count, right.count) {
            let l = index < left.count ? left[index] : "<end>"
            let r = index < right.count ? right[index] : "<end>"
            if l != r { return "line \(index + 1): \"\(l)\" vs \"\(r)\"" }
        }
        return "nowhere"
    }
}
