/**
 * Escaping for text put into markdown that operators read in the Temporal UI (a workflow's summary,
 * details and current details). A value from outside (a workflow ID, HeyGen's words) must show as
 * text: never a link, an image, a heading or a second line.
 */

// CommonMark's ASCII punctuation that can start or end markup.
const MARKDOWN_SPECIAL = /[\\`*_{}[\]()#+\-.!|<>~"'&:]/g;
// eslint-disable-next-line no-control-regex
const LINE_BREAKS_AND_CONTROLS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g;

export function escapeMarkdown(text: string): string {
  return text.replace(LINE_BREAKS_AND_CONTROLS, ' ').replace(MARKDOWN_SPECIAL, (ch) => `\\${ch}`);
}
