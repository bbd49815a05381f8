// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "Parley",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "MLS", targets: ["MLS"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", exact: "4.5.2"),
    ],
    targets: [
        // RFC 9420 Messaging Layer Security: pure value types on swift-crypto, no I/O.
        .target(
            name: "MLS",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")]
        ),
        .testTarget(
            name: "MLSTests",
            dependencies: ["MLS"]
        ),
    ]
)
