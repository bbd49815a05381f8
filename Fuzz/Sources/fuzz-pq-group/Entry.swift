import CLibFuzzer
import ParleyFuzzKit

// The `pq-group` target: libFuzzer's hooks; the checks are in ParleyFuzzKit.

@_cdecl("LLVMFuzzerInitialize")
public func fuzzerInitialize(_ argc: UnsafeMutableRawPointer?, _ argv: UnsafeMutableRawPointer?) -> CInt {
    FuzzTarget.postQuantumGroup.initialize()
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzTarget.postQuantumGroup.run(data, size)
}

/// The process entry: SwiftPM links an executable's `main` under this name.
@_cdecl("fuzz_pq_group_main")
public func fuzzerMain(
    _ argc: CInt,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments, fuzzerTestOneInput)
}
