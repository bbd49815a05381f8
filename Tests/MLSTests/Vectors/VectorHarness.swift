import Foundation
import MLS
import Testing

/// Where the official RFC 9420 test vectors live: `MLS_TEST_VECTORS`, else
/// `../shared/mls-test-vectors` beside the repository. Missing vectors are a
/// failure, never a silent pass.
enum VectorDirectory {
    static func url() throws -> URL {
        if let explicit = ProcessInfo.processInfo.environment["MLS_TEST_VECTORS"], !explicit.isEmpty {
            return try existing(URL(fileURLWithPath: explicit))
        }
        let repositoryRoot = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        return try existing(repositoryRoot.appendingPathComponent("../shared/mls-test-vectors").standardized)
    }

    private static func existing(_ url: URL) throws -> URL {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw VectorError.missingDirectory(url.path)
        }
        return url
    }
}

enum VectorError: Error, CustomStringConvertible {
    case missingDirectory(String)
    case mismatch(field: String, expected: String, actual: String)
    case failed(String)

    var description: String {
        switch self {
        case .missingDirectory(let path):
            "MLS test vectors not found at \(path). Get them from https://github.com/mlswg/mls-implementations "
                + "(test-vectors/) and set MLS_TEST_VECTORS to that directory, or place them in ../shared/mls-test-vectors."
        case .mismatch(let field, let expected, let actual):
            "\(field): expected \(expected), got \(actual)"
        case .failed(let message):
            message
        }
    }
}

/// Hex-encoded bytes in a vector file.
struct Hex: Decodable, Hashable {
    let bytes: [UInt8]

    init(from decoder: Decoder) throws {
        let string = try decoder.singleValueContainer().decode(String.self)
        guard let bytes = Self.decode(string) else {
            throw Swift.DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "not hex: \(string.prefix(40))")
            )
        }
        self.bytes = bytes
    }

    static func decode(_ string: String) -> [UInt8]? {
        let digits = Array(string.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let byte = UInt8(String(decoding: digits[index..<index + 2], as: UTF8.self), radix: 16) else {
                return nil
            }
            bytes.append(byte)
        }
        return bytes
    }
}

extension Array where Element == UInt8 {
    var hex: String { map { String(format: "%02x", $0) }.joined() }
}

/// Throws a mismatch naming `field` unless the values are equal.
func check<T: Equatable>(_ actual: T, _ expected: T, _ field: String) throws {
    guard actual == expected else {
        throw VectorError.mismatch(field: field, expected: describe(expected), actual: describe(actual))
    }
}

func check(_ condition: Bool, _ what: String) throws {
    guard condition else { throw VectorError.failed(what) }
}

private func describe<T>(_ value: T) -> String {
    if let bytes = value as? [UInt8] { return bytes.hex }
    return String(describing: value)
}

struct VectorReport {
    var passed = 0
    var failed = 0
    var skipped = 0
    var failures: [String] = []
}

/// One official vector file: how to read its entries, which suite each is
/// for, and how to verify one. Entries for suites this library does not
/// implement (4 and 6) are counted as skipped.
struct VectorFile<Entry: Decodable & Sendable>: Sendable {
    let name: String
    var cipherSuite: @Sendable (Entry) -> UInt16? = { _ in nil }
    let verify: @Sendable (Entry) throws -> Void

    func entries(from data: Data) throws -> [Entry] {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode([Entry].self, from: data)
    }

    func run(_ entries: [Entry]) -> VectorReport {
        var report = VectorReport()
        for (index, entry) in entries.enumerated() {
            if let suite = cipherSuite(entry), !CipherSuite(rawValue: suite).isSupported {
                report.skipped += 1
                continue
            }
            do {
                try verify(entry)
                report.passed += 1
            } catch {
                report.failed += 1
                report.failures.append("entry \(index): \(error)")
            }
        }
        return report
    }

    /// Runs the whole file, prints its summary line and records each failure.
    @discardableResult
    func runAndReport() throws -> VectorReport {
        let url = try VectorDirectory.url().appendingPathComponent(name)
        let report = run(try entries(from: Data(contentsOf: url)))
        print("\(name): \(report.passed) passed, \(report.failed) failed, \(report.skipped) skipped")
        for failure in report.failures { Issue.record("\(name) \(failure)") }
        return report
    }

    /// Runs one entry of the file after changing one expected value at `path`
    /// (a hex string gets its last digit flipped, a number is incremented), and
    /// returns the report. Proves the verifier looks at that value.
    func runTampered(entry index: Int, at path: [any Sendable]) throws -> VectorReport {
        let url = try VectorDirectory.url().appendingPathComponent(name)
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [Any]
        json[index] = try tamper(json[index], at: path[...])
        let data = try JSONSerialization.data(withJSONObject: [json[index]])
        return run(try entries(from: data))
    }

    private func tamper(_ value: Any, at path: ArraySlice<any Sendable>) throws -> Any {
        guard let head = path.first else {
            if let string = value as? String, let last = string.last {
                let flipped: Character = last == "0" ? "1" : "0"
                return String(string.dropLast()) + String(flipped)
            }
            if let number = value as? Int { return number + 1 }
            throw VectorError.failed("cannot tamper with \(value)")
        }
        if let key = head as? String, var object = value as? [String: Any], let inner = object[key] {
            object[key] = try tamper(inner, at: path.dropFirst())
            return object
        }
        if let position = head as? Int, var array = value as? [Any], array.indices.contains(position) {
            array[position] = try tamper(array[position], at: path.dropFirst())
            return array
        }
        throw VectorError.failed("no value at \(path)")
    }
}
