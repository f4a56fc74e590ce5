import Foundation

/// Renders a conversation with a model's chat template.
///
/// Lancet does not embed a Jinja interpreter: it recognises the template families that Llama-family
/// models ship and renders them natively. ChatML (`<|im_start|>role\n…<|im_end|>\n`, SmolLM2 and Qwen2,
/// including a default system message that the template inserts when the conversation has none),
/// Llama 3 (`<|start_header_id|>role<|end_header_id|>\n\n…<|eot_id|>`) and Llama 2 (`[INST] … [/INST]`).
/// Any other template is rejected with an error rather than rendered wrongly.
public struct ChatTemplate: Sendable {
    /// One message of a conversation.
    public struct Message: Sendable, Equatable {
        /// `system`, `user` or `assistant`.
        public var role: String
        /// The text.
        public var content: String
        /// Creates a message.
        public init(role: String, content: String) {
            self.role = role
            self.content = content
        }
    }

    /// The recognised template families.
    public enum Family: String, Sendable { case chatML = "ChatML", llama3 = "Llama 3", llama2 = "Llama 2" }

    /// The family of the template.
    public let family: Family
    /// The system message the template adds when the conversation has none (ChatML), if any.
    public let defaultSystemMessage: String?

    /// An error for templates Lancet does not recognise.
    public struct Unsupported: Error, CustomStringConvertible {
        public var description: String {
            "the model's chat template is not one of the families Lancet renders (ChatML, Llama 3, Llama 2); pass the formatted prompt without --chat"
        }
    }

    /// Recognises `template` (the Jinja text of `tokenizer.chat_template`).
    public init(_ template: String) throws {
        if template.contains("<|im_start|>") {
            family = .chatML
            defaultSystemMessage = Self.literalSystemMessage(in: template)
        } else if template.contains("<|start_header_id|>") {
            family = .llama3
            defaultSystemMessage = nil
        } else if template.contains("[INST]") {
            family = .llama2
            defaultSystemMessage = nil
        } else {
            throw Unsupported()
        }
    }

    /// The prompt text for `messages`, ending with the assistant's turn opener when `addGenerationPrompt`.
    public func render(_ messages: [Message], addGenerationPrompt: Bool) -> String {
        var out = ""
        switch family {
        case .chatML:
            if let system = defaultSystemMessage, messages.first?.role != "system" {
                out += "<|im_start|>system\n\(system)<|im_end|>\n"
            }
            for m in messages { out += "<|im_start|>\(m.role)\n\(m.content)<|im_end|>\n" }
            if addGenerationPrompt { out += "<|im_start|>assistant\n" }
        case .llama3:
            out += "<|begin_of_text|>"
            for m in messages { out += "<|start_header_id|>\(m.role)<|end_header_id|>\n\n\(m.content)<|eot_id|>" }
            if addGenerationPrompt { out += "<|start_header_id|>assistant<|end_header_id|>\n\n" }
        case .llama2:
            var system: String?
            for m in messages {
                switch m.role {
                case "system": system = m.content
                case "user":
                    let content = system.map { "<<SYS>>\n\($0)\n<</SYS>>\n\n" + m.content } ?? m.content
                    system = nil
                    out += "<s>[INST] \(content.trimmingSpaces()) [/INST]"
                default: out += " \(m.content.trimmingSpaces()) </s>"
                }
            }
        }
        return out
    }

    /// The literal default system message in a ChatML template: the string literal that opens with
    /// `<|im_start|>system\n` and ends with `<|im_end|>`.
    static func literalSystemMessage(in template: String) -> String? {
        let opener = "<|im_start|>system\n"
        guard let start = template.range(of: opener), let end = template.range(of: "<|im_end|>", range: start.upperBound..<template.endIndex)
        else { return nil }
        let message = String(template[start.upperBound..<end.lowerBound])
        return message.contains("'") || message.contains("{") ? nil : message
    }
}

extension String {
    fileprivate func trimmingSpaces() -> String {
        var s = Substring(self)
        while s.first == " " || s.first == "\n" { s = s.dropFirst() }
        while s.last == " " || s.last == "\n" { s = s.dropLast() }
        return String(s)
    }
}
