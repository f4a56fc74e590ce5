// swift-tools-version:6.0
// Lancet: model surgery for transformer language models. See Docs/ and ../shared/DESIGN.md for the layering.
import PackageDescription

/// Optimisation flags for the numeric targets, release builds only: bounds checks off, and AVX2/FMA/F16C code
/// generation (the x86-64 machines Lancet targets have them; the clang importer flags set Swift's target features too).
let numericSettings: [SwiftSetting] = [
    .unsafeFlags(["-wmo", "-Xcc", "-mavx2", "-Xcc", "-mfma", "-Xcc", "-mf16c"], .when(configuration: .release)),
]

let package = Package(
    name: "Lancet",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "Lancet", targets: ["Lancet"]),
        .executable(name: "lancet", targets: ["LancetCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]
        ),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(name: "LancetTensor", dependencies: ["CBLAS"], swiftSettings: numericSettings),
        .target(name: "LancetIR", dependencies: ["LancetTensor"], swiftSettings: numericSettings),
        .target(name: "LancetRuntime", dependencies: ["LancetIR"], swiftSettings: numericSettings),
        .target(name: "LancetIO", dependencies: ["LancetIR"], swiftSettings: numericSettings),
        .target(name: "LancetData", dependencies: ["LancetRuntime", "LancetIO", "CZlib"], swiftSettings: numericSettings),
        .target(name: "LancetSurgery", dependencies: ["LancetData", "Yams"], swiftSettings: numericSettings),
        .target(name: "LancetPassesPrune", dependencies: ["LancetSurgery"], swiftSettings: numericSettings),
        .target(name: "Lancet", dependencies: ["LancetTensor", "LancetIR", "LancetRuntime", "LancetIO", "LancetData", "LancetSurgery",
                                               "LancetPassesPrune"]),
        .executableTarget(
            name: "LancetCLI",
            dependencies: ["Lancet", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(name: "lancet-example-script", dependencies: ["Lancet"], path: "Examples/Script"),
        .testTarget(name: "LancetTensorTests", dependencies: ["LancetTensor"]),
        .testTarget(name: "LancetIOTests", dependencies: ["LancetIO", "LancetRuntime"], resources: [.copy("Fixtures")]),
        .testTarget(name: "LancetIRTests", dependencies: ["LancetIR", "LancetRuntime"]),
        .testTarget(name: "LancetRuntimeTests", dependencies: ["Lancet"]),
        .testTarget(name: "LancetSurgeryTests", dependencies: ["Lancet"]),
        .testTarget(name: "LancetPassesPruneTests", dependencies: ["Lancet"]),
    ],
    swiftLanguageModes: [.v5]
)
