// swift-tools-version:6.1
import PackageDescription

// libFuzzer targets for every decoder of untrusted input (issue 11, "Fuzzing").
// A separate package so the normal build and CI never compile it; build it with
// the sanitizer flags through `scripts/fuzz`, which knows the exact command.
let targets = [
    "mls-message", "key-package", "welcome", "group-info", "ratchet-tree", "leaf-node", "proposal",
    "client-frame", "http-body", "server-frame", "group-process", "group-state", "parley-content",
    "pq-group",
]

let package = Package(
    name: "ParleyFuzz",
    platforms: [.macOS(.v14)],
    dependencies: [.package(name: "Parley", path: "..")],
    targets: [
        // The declaration of libFuzzer's driver, which each target's entry point calls.
        .target(name: "CLibFuzzer"),
        // What each target checks, its seeds and the live group of the stateful target.
        .target(
            name: "ParleyFuzzKit",
            dependencies: [
                .product(name: "MLS", package: "Parley"),
                .product(name: "ParleyProtocol", package: "Parley"),
            ]
        ),
    ]
        + targets.map { name in
            // One executable per target: only libFuzzer's entry points, named after the target.
            .executableTarget(name: "fuzz-\(name)", dependencies: ["ParleyFuzzKit", "CLibFuzzer"])
        }
)
