// swift-tools-version:6.0
// An out-of-tree Lancet pass, built as a plugin library: `swift build -c release`, then
// `lancet … --plugin .build/release/libExamplePass.so`. See ../../Docs/WritingAPass.md.
import PackageDescription

let package = Package(
    name: "ExamplePass",
    products: [
        // The plugin: a shared library exporting `lancet_plugin_entry`.
        .library(name: "ExamplePass", type: .dynamic, targets: ["ExamplePass"]),
    ],
    dependencies: [
        // The Lancet checkout this plugin is built against; the host must be built from the same sources.
        .package(name: "Lancet", path: "../.."),
    ],
    targets: [
        .target(name: "ExamplePass", dependencies: [.product(name: "Lancet", package: "Lancet")]),
    ],
    swiftLanguageModes: [.v5]
)
