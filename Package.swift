// swift-tools-version:6.0
// Lancet: model surgery for transformer language models. See Docs/ and ../shared/DESIGN.md for the layering.
import PackageDescription

/// Optimisation flags for the numeric targets, release builds only: bounds checks off, and AVX2/FMA/F16C code
/// generation (the x86-64 machines Lancet targets have them; the clang importer flags set Swift's target features too).
let numericSettings: [SwiftSetting] = [
    .unsafeFlags(["-wmo", "-Xcc", "-mavx2", "-Xcc", "-mfma", "-Xcc", "-mf16c"], .when(configuration: .release)),
]

/// Linker flags of an executable that loads pass plugins: export its symbols. A plugin links against the dynamic
/// `Lancet` product, so its references to Lancet are undefined, and `dlopen` binds them to the host's exported copy:
/// host and plugin share one set of Lancet types. See Docs/WritingAPass.md, "Out of tree: a plugin library".
let pluginHostLinkerSettings: [LinkerSetting] = [
    .unsafeFlags(["-Xlinker", "--export-dynamic"], .when(platforms: [.linux])),
]

let package = Package(
    name: "Lancet",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Lancet", type: .dynamic, targets: ["Lancet"]),
        .executable(name: "lancet", targets: ["LancetCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        .systemLibrary(
            name: "CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]
        ),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CKernels"),
        .target(name: "LancetTensor", dependencies: ["CBLAS", "CKernels"], swiftSettings: numericSettings),
        .target(name: "LancetIR", dependencies: ["LancetTensor"], swiftSettings: numericSettings),
        .target(name: "LancetRuntime", dependencies: ["LancetIR"], swiftSettings: numericSettings),
        .target(name: "LancetIO", dependencies: ["LancetIR", .product(name: "Crypto", package: "swift-crypto")], swiftSettings: numericSettings),
        .target(name: "LancetData", dependencies: ["LancetRuntime", "LancetIO", "CZlib"], swiftSettings: numericSettings),
        .target(name: "LancetSurgery", dependencies: ["LancetData", "Yams"], swiftSettings: numericSettings),
        .target(name: "LancetPassesPrune", dependencies: ["LancetSurgery"], swiftSettings: numericSettings),
        .target(name: "LancetPassesCollapse", dependencies: ["LancetSurgery"], swiftSettings: numericSettings),
        .target(name: "LancetPassesDecompose", dependencies: ["LancetSurgery"], swiftSettings: numericSettings),
        .target(name: "LancetPassesMoE", dependencies: ["LancetSurgery"], swiftSettings: numericSettings),
        .target(name: "LancetPassesDynamic", dependencies: ["LancetSurgery"], swiftSettings: numericSettings),
        .target(name: "LancetPassesCurvature", dependencies: ["LancetSurgery"], swiftSettings: numericSettings),
        .target(name: "LancetPassesSearch", dependencies: ["LancetSurgery"], swiftSettings: numericSettings),
        .target(name: "Lancet", dependencies: ["LancetTensor", "LancetIR", "LancetRuntime", "LancetIO", "LancetData", "LancetSurgery",
                                               "LancetPassesPrune", "LancetPassesCollapse", "LancetPassesDecompose", "LancetPassesMoE",
                                               "LancetPassesDynamic", "LancetPassesCurvature", "LancetPassesSearch"]),
        .executableTarget(
            name: "LancetCLI",
            dependencies: ["Lancet", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            linkerSettings: pluginHostLinkerSettings
        ),
        .executableTarget(name: "lancet-example-script", dependencies: ["Lancet"], path: "Examples/Script"),
        .target(name: "LancetFuzz", dependencies: ["Lancet"]),
        .executableTarget(
            name: "lancet-fuzz",
            dependencies: ["LancetFuzz", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/LancetFuzzDriver"
        ),
        .testTarget(name: "LancetTensorTests", dependencies: ["LancetTensor", "CKernels"]),
        .testTarget(name: "LancetIOTests", dependencies: ["LancetIO", "LancetRuntime"], resources: [.copy("Fixtures")]),
        .testTarget(name: "LancetIRTests", dependencies: ["LancetIR", "LancetRuntime"]),
        .testTarget(name: "LancetRuntimeTests", dependencies: ["Lancet"]),
        .testTarget(name: "LancetSurgeryTests", dependencies: ["Lancet"], linkerSettings: pluginHostLinkerSettings),
        .testTarget(name: "LancetPassesPruneTests", dependencies: ["Lancet"]),
        .testTarget(name: "LancetPassesCollapseTests", dependencies: ["Lancet"]),
        .testTarget(name: "LancetPassesDecomposeTests", dependencies: ["Lancet"]),
        .testTarget(name: "LancetPassesMoETests", dependencies: ["Lancet"]),
        .testTarget(name: "LancetPassesDynamicTests", dependencies: ["Lancet"]),
        .testTarget(name: "LancetPassesCurvatureTests", dependencies: ["Lancet"]),
        .testTarget(name: "LancetPassesSearchTests", dependencies: ["Lancet"]),
        .testTarget(name: "LancetFuzzTests", dependencies: ["LancetFuzz"]),
        .testTarget(name: "LancetCLITests", dependencies: ["Lancet", "LancetFuzz"]),
        .plugin(
            name: "NewPass",
            capability: .command(
                intent: .custom(verb: "new-pass", description: "Scaffolds a pass (--scope block, the default, or model) in Sources/LancetPasses<Family>: the pass, its registration and a test"),
                permissions: [.writeToPackageDirectory(reason: "Creates the pass, its test and (for a new family) its target folder, and edits the family's registration table and Package.swift")]
            )
        ),
    ],
    swiftLanguageModes: [.v5]
)
