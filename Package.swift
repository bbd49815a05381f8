// swift-tools-version:6.2
import PackageDescription

// CI builds Parley's own targets with every warning as an error (PARLEY_WARNINGS_AS_ERRORS=1, set by
// .ci/run); day to day a warning stays a warning so work in progress still builds.
let strictSettings: [SwiftSetting] =
    Context.environment["PARLEY_WARNINGS_AS_ERRORS"] == "1" ? [.treatAllWarnings(as: .error)] : []

let package = Package(
    name: "Parley",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "MLS", targets: ["MLS"]),
        // For the fuzz package in Fuzz/, which builds the decoders it tests with sanitizers.
        .library(name: "ParleyProtocol", targets: ["ParleyProtocol"]),
        .executable(name: "parley", targets: ["parley"]),
        .executable(name: "parley-bench", targets: ["parley-bench"]),
        .executable(name: "parley-mls-interop", targets: ["parley-mls-interop"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", exact: "4.5.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        // PostgresStorage, for several server nodes on one database.
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        // The MLS working group's interop harness speaks gRPC (parley-mls-interop).
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
    ],
    targets: [
        // RFC 9420 Messaging Layer Security: pure value types on swift-crypto, no I/O.
        .target(
            name: "MLS",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strictSettings
        ),
        // Client <-> server frames, errors and the Parley group policy, shared by both sides.
        .target(
            name: "ParleyProtocol",
            dependencies: ["MLS", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strictSettings
        ),
        // Delivery service, accounts and KeyPackage directory.
        .target(
            name: "ParleyServer",
            dependencies: [
                "MLS", "ParleyProtocol",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        // Client engine: local store, keys at rest, sync, groups.
        .target(
            name: "ParleyClient",
            dependencies: [
                "MLS", "ParleyProtocol",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // `parley demo`: a server and three clients playing the seeds' scenario.
        .target(
            name: "ParleyDemo",
            dependencies: ["ParleyServer", "ParleyClient", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strictSettings
        ),
        // `parley chat`: commands parsed into values, key decoder, line editor, renderer and a network
        // worker; a library so all of it is tested without a terminal.
        .target(
            name: "ParleyChat",
            dependencies: ["ParleyClient"],
            swiftSettings: strictSettings
        ),
        // Child processes started with posix_spawn and reaped with waitpid: parley-bench's crash and
        // multi-node runs, and the tests that run the built `parley`.
        .target(
            name: "ProcessSupport",
            swiftSettings: strictSettings
        ),
        // The one executable: serve, admin, client commands, chat TUI.
        .executableTarget(
            name: "parley",
            dependencies: [
                "ParleyServer", "ParleyProtocol", "ParleyClient", "ParleyDemo", "ParleyChat",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // Benchmarks: `parley-bench mls` (MLS operations by group size) and `load` (server).
        .executableTarget(
            name: "parley-bench",
            dependencies: [
                "MLS", "ParleyServer", "ParleyClient", "ParleyProtocol", "ParleyChat", "ProcessSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // `parley-mls-interop --port N`: the interop harness's MLSClient gRPC service
        // on the MLS library (code in Generated/ from scripts/generate-interop-grpc).
        .executableTarget(
            name: "parley-mls-interop",
            dependencies: [
                "MLS",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "MLSTests",
            dependencies: ["MLS"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ParleyProtocolTests",
            dependencies: ["ParleyProtocol", "MLS"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ParleyClientTests",
            dependencies: [
                "ParleyClient", "ParleyServer", "ParleyProtocol", "ParleyDemo", "ParleyChat", "MLS", "ProcessSupport",
                // The hostile-server proxy (HostileServerProxy.swift).
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                // A fresh database for the upgrade on PostgreSQL (UpgradeTests).
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ParleyChatTests",
            dependencies: ["ParleyChat", "ParleyClient"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ParleyServerTests",
            dependencies: [
                "ParleyServer", "ParleyProtocol", "MLS", "ParleyClient", "ProcessSupport",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                // WriteCoalescingTests drive the handler on an EmbeddedChannel.
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: strictSettings
        ),
    ]
)
