import Foundation
import Testing

@testable import ParleyServer

/// Configured values are trusted, but none may make the server trap or lock everyone out:
/// each out-of-range value is refused at load with a sentence naming its key and range.
@Suite struct ConfigurationValidationTests {
    private static func message(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch let error as ServerError {
            return error.description
        } catch {
            return "unexpected \(type(of: error)): \(error)"
        }
    }

    @Test func theDefaultsAreValid() throws {
        try ServerConfiguration().validate()
    }

    @Test(arguments: [Int.min, -1, 0, Int.max, Int.max / 4 + 1, 1 << 40])
    func everyNumericKeyRefusesValuesOutsideItsRange(_ value: Int) throws {
        for bound in ServerConfiguration.bounds where !bound.range.contains(value) {
            var configuration = ServerConfiguration()
            // Each bound's key path is writable: set through the coding key, as a file would.
            let json = try JSONSerialization.data(withJSONObject: [bound.key: value])
            configuration = try JSONDecoder().decode(ServerConfiguration.self, from: json)
            let said = Self.message { try configuration.validate() }
            #expect(
                said == "configuration error: \(bound.key) is \(value); it must be between "
                    + "\(bound.range.lowerBound) and \(bound.range.upperBound)."
            )
        }
    }

    @Test func everyBoundNamesARealKeyAndEveryNumericKeyHasABound() throws {
        let bounded = Set(ServerConfiguration.bounds.map(\.key))
        let numeric = Set(ServerConfiguration.allKeys).subtracting(ServerConfiguration.stringKeys)
        #expect(bounded == numeric)
        // The products the server forms from the largest allowed values do not overflow.
        let largest = Dictionary(uniqueKeysWithValues: ServerConfiguration.bounds.map { ($0.key, $0.range.upperBound) })
        #expect(try #require(largest["max_frame_bytes"]).multipliedReportingOverflow(by: 4).overflow == false)
        #expect(try #require(largest["max_frame_bytes"]) * 4 <= Int(UInt32.max))
        #expect(try #require(largest["messages_per_second"]).multipliedReportingOverflow(by: 60).overflow == false)
        for key in [
            "handshake_timeout_seconds", "idle_timeout_seconds", "ping_interval_seconds",
            "session_check_seconds", "epoch_grace_seconds",
        ] {
            #expect(try #require(largest[key]).multipliedReportingOverflow(by: 1_000_000_000).overflow == false)
        }
    }

    @Test func theServerRefusesToStartOnAnInvalidValue() throws {
        var configuration = ServerConfiguration()
        configuration.dataDirectory = NSTemporaryDirectory() + "parley-config-" + UUID().uuidString
        configuration.maxFrameBytes = Int.max / 2
        #expect(
            Self.message { _ = try ParleyServer(configuration: configuration) }?
                .contains("max_frame_bytes is \(Int.max / 2)") == true
        )
        configuration.maxFrameBytes = 1 << 20
        configuration.pingIntervalSeconds = -5
        #expect(
            Self.message { _ = try ParleyServer(configuration: configuration) }?
                .contains("ping_interval_seconds is -5; it must be between 1 and 3600") == true
        )
        // Nothing was created for a refused configuration.
        #expect(!FileManager.default.fileExists(atPath: configuration.dataDirectory))
    }

    @Test func allDigitTokensFromTheEnvironmentStayText() throws {
        let configuration = try ServerConfiguration.load(
            file: nil,
            environment: [
                "PARLEY_METRICS_TOKEN": "123456", "PARLEY_INVITE_TOKEN": "0042", "PARLEY_REGISTRATION": "invite",
                "PARLEY_HOST": "127", "PARLEY_PORT": "9000",
            ]
        )
        #expect(configuration.metricsToken == "123456")
        #expect(configuration.inviteToken == "0042")
        #expect(configuration.host == "127")
        #expect(configuration.port == 9000)
        try configuration.validate()
    }

    @Test func wrongKindsAreRefusedWithASentenceNamingTheKey() throws {
        let notANumber = Self.message {
            _ = try ServerConfiguration.load(file: nil, environment: ["PARLEY_PORT": "http"])
        }
        #expect(
            notANumber
                == "configuration error: PARLEY_PORT is \"http\"; it must be a whole number between 0 and 65535."
        )
        let huge = Self.message {
            _ = try ServerConfiguration.load(file: nil, environment: ["PARLEY_MAX_FRAME_BYTES": "99999999999999999999"])
        }
        #expect(huge?.contains("PARLEY_MAX_FRAME_BYTES") == true)
        let file = NSTemporaryDirectory() + "parley-config-" + UUID().uuidString + ".json"
        try Data(#"{"retention_days": "thirty"}"#.utf8).write(to: URL(fileURLWithPath: file))
        let fromFile = Self.message { _ = try ServerConfiguration.load(file: file, environment: [:]) }
        #expect(fromFile?.contains("retention_days in \(file) is not valid") == true, "\(fromFile ?? "nil")")
        #expect(fromFile?.hasSuffix("it must be a whole number between 1 and 3650.") == true)
        // A number no Int holds is refused as well (Foundation calls it invalid JSON).
        try Data(#"{"retention_days": 99999999999999999999}"#.utf8).write(to: URL(fileURLWithPath: file))
        #expect(
            Self.message { _ = try ServerConfiguration.load(file: file, environment: [:]) }?
                .contains("\(file) is not a valid JSON object") == true
        )
        try Data(#"{"registration": "sometimes"}"#.utf8).write(to: URL(fileURLWithPath: file))
        let registration = Self.message { _ = try ServerConfiguration.load(file: file, environment: [:]) }
        #expect(registration?.contains("one of open, closed or invite") == true)
    }

    @Test func inviteRegistrationNeedsAToken() {
        var configuration = ServerConfiguration()
        configuration.registration = .invite
        #expect(
            Self.message { try configuration.validate() }
                == "configuration error: registration is invite, so invite_token must be set."
        )
    }
}
