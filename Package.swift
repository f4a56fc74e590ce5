// swift-tools-version:6.0
// Lancet: model surgery for transformer language models. See Docs/ and ../shared/DESIGN.md for the layering.
import PackageDescription

/// Optimisation flags for the numeric targets: bounds checks off in release builds only.
let numericSettings: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release)),
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
    ],
    targets: [
        .systemLibrary(
            name: "CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]
        ),
        .target(name: "LancetTensor", dependencies: ["CBLAS"], swiftSettings: numericSettings),
        .target(name: "LancetIO", dependencies: ["LancetTensor"], swiftSettings: numericSettings),
        .target(name: "Lancet", dependencies: ["LancetTensor", "LancetIO"]),
        .executableTarget(
            name: "LancetCLI",
            dependencies: ["Lancet", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .testTarget(name: "LancetTensorTests", dependencies: ["LancetTensor"]),
        .testTarget(name: "LancetIOTests", dependencies: ["LancetIO"], resources: [.copy("Fixtures")]),
    ],
    swiftLanguageModes: [.v5]
)
