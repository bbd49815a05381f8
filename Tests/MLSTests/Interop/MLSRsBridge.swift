import Foundation

/// Drives `Tests/Interop/mls_rs_bridge.py`, a Python process running AWS mls-rs.
///
/// The Python with the `agentvault-mls-rs-uniffi` bindings is taken from
/// `PARLEY_INTEROP_PYTHON`, else `.build/interop-venv` (which `.ci/run`
/// prepares); when neither exists the venv is created here.
final class MLSRsBridge {
    struct BridgeError: Error, CustomStringConvertible { let description: String }

    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private var buffer = Data()

    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    init() throws {
        process.executableURL = URL(fileURLWithPath: try Self.python())
        process.arguments = [Self.repositoryRoot.appendingPathComponent("Tests/Interop/mls_rs_bridge.py").path]
        process.standardInput = input
        process.standardOutput = output
        try process.run()
    }

    deinit {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }

    /// Sends one request and returns the `ok` object, or throws the bridge's error.
    @discardableResult
    func call(_ op: String, client: String, _ arguments: [String: Any] = [:]) throws -> [String: Any] {
        var request = arguments
        request["op"] = op
        request["client"] = client
        var line = try JSONSerialization.data(withJSONObject: request)
        line.append(0x0a)
        try input.fileHandleForWriting.write(contentsOf: line)
        while !buffer.contains(0x0a) {
            let chunk = output.fileHandleForReading.availableData
            guard !chunk.isEmpty else { throw BridgeError(description: "the mls-rs bridge exited") }
            buffer.append(chunk)
        }
        let end = buffer.firstIndex(of: 0x0a)!
        let reply = try JSONSerialization.jsonObject(with: buffer[buffer.startIndex..<end]) as! [String: Any]
        buffer.removeSubrange(buffer.startIndex...end)
        if let error = reply["error"] as? String { throw BridgeError(description: "mls-rs \(op) failed: \(error)") }
        return reply["ok"] as? [String: Any] ?? [:]
    }

    private static func python() throws -> String {
        if let explicit = ProcessInfo.processInfo.environment["PARLEY_INTEROP_PYTHON"], !explicit.isEmpty {
            return explicit
        }
        let venv = repositoryRoot.appendingPathComponent(".build/interop-venv")
        let python = venv.appendingPathComponent("bin/python3").path
        if !FileManager.default.fileExists(atPath: python) {
            try run("/usr/bin/env", ["python3", "-m", "venv", venv.path])
            try run(python, ["-m", "pip", "install", "--quiet", "agentvault-mls-rs-uniffi==0.1.1"])
        }
        return python
    }

    private static func run(_ executable: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw BridgeError(
                description:
                    "could not prepare the mls-rs Python bindings (\(executable) \(arguments.joined(separator: " ")) failed); "
                    + "install them with `python3 -m venv .build/interop-venv && .build/interop-venv/bin/pip install agentvault-mls-rs-uniffi`"
            )
        }
    }
}

extension Array where Element == UInt8 {
    init(hex: Any?) throws {
        guard let string = hex as? String, let bytes = Hex.decode(string) else {
            throw MLSRsBridge.BridgeError(description: "expected hex from the bridge, got \(String(describing: hex))")
        }
        self = bytes
    }
}
