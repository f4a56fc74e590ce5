import Foundation
import XCTest
@testable import LancetIO
import LancetIR
import LancetTensor

/// Export of the reference model (SmolLM2-135M-Instruct): F32 GGUF and the Hugging Face tokenizer files.
/// Run in release (`swift test -c release -Xswiftc -enable-testing --filter Export`).
final class ExportRealModelTests: XCTestCase {
    typealias S = ExportTestSupport

    private func loadReference() throws -> Model {
        _ = try GGUFTestSupport.openModel()  // skips when the model is absent
        return try ModelLoader.load(GGUFTestSupport.modelPath)
    }

    func testSmolLM2ExportsToF32GGUFAndReadsBackWithIdenticalLogits() throws {
        let start = Date()
        let model = try loadReference()
        let path = S.temporaryPath("smollm2-f32.gguf")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try GGUFExporter.write(model, to: path)
        let back = try ModelLoader.load(path)
        let file = try GGUFFile(path: path)

        XCTAssertEqual(file.string("general.architecture"), "llama")
        XCTAssertEqual(Set(file.tensors.map(\.type)), [.f32])
        XCTAssertEqual(file.tensors.count, 272)
        XCTAssertEqual(file.string("tokenizer.ggml.pre"), "smollm")
        XCTAssertEqual(file.metadata["tokenizer.ggml.merges"]?.arrayValue?.count, 48900)
        XCTAssertNotNil(file.string("tokenizer.chat_template"))

        let tokenizer = try XCTUnwrap(back.tokenizer as? Tokenizer), original = try XCTUnwrap(model.tokenizer as? Tokenizer)
        let prompt = "The capital of France is"
        let ids = tokenizer.encode(prompt, addSpecialTokens: true, parseSpecial: true)
        XCTAssertEqual(ids, original.encode(prompt, addSpecialTokens: true, parseSpecial: true))
        XCTAssertEqual(tokenizer.tokenTypes, original.tokenTypes)
        XCTAssertEqual([tokenizer.bos, tokenizer.eos, tokenizer.unk, tokenizer.pad], [original.bos, original.eos, original.unk, original.pad])
        XCTAssertEqual(try S.logits(back, ids), try S.logits(model, ids), "F32 export must be bit-exact")
        print("SmolLM2 export round trip: \(String(format: "%.2f", Date().timeIntervalSince(start))) s")
    }

    /// `tokenizer.json` written from the GGUF tokenizer reads back as the same vocabulary, merges and flags,
    /// and encodes to the same ids.
    func testSmolLM2TokenizerRoundTripsThroughTokenizerJSON() throws {
        _ = try GGUFTestSupport.openModel()
        let original = try ModelLoader.tokenizer(GGUFTestSupport.modelPath)
        let folder = S.temporaryPath("smollm2-tokenizer")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try original.huggingFaceTokenizerJSON().write(to: URL(fileURLWithPath: folder + "/tokenizer.json"))
        try original.huggingFaceTokenizerConfigJSON(modelMaxLength: 8192).write(to: URL(fileURLWithPath: folder + "/tokenizer_config.json"))
        let back = try Tokenizer(huggingFaceFolder: URL(fileURLWithPath: folder))

        XCTAssertEqual(back.tokens, original.tokens)
        XCTAssertEqual(back.tokenTypes, original.tokenTypes)
        XCTAssertEqual(back.merges, original.merges)
        XCTAssertEqual(back.preTokenizer?.algorithm, original.preTokenizer?.algorithm)
        XCTAssertEqual([back.bos, back.eos, back.unk, back.pad], [original.bos, original.eos, original.unk, original.pad])
        XCTAssertEqual(back.addBOS, original.addBOS)
        XCTAssertEqual(back.chatTemplate, original.chatTemplate)
        for text in ["The capital of France is", "<|im_start|>user\nHi 12345!<|im_end|>", "  spaces\tand\nnewlines  ", "naïve café 東京 🙂"] {
            XCTAssertEqual(back.encode(text, addSpecialTokens: true, parseSpecial: true),
                           original.encode(text, addSpecialTokens: true, parseSpecial: true), text)
        }
    }
}
