/**
 * The gateway's few HTML pages. All text is static: nothing from the request is ever reflected, so
 * there is nothing to escape. The wording stays neutral because a visit here proves nothing about
 * the consent itself (HeyGen's redirect is unsigned); the workflow learns the outcome from HeyGen.
 */

export type GatewayPage =
  | 'thank-you'
  | 'invalid-link'
  | 'expired-link'
  | 'not-found'
  | 'method-not-allowed'
  | 'uri-too-long'
  | 'too-many-requests'
  | 'server-error';

interface PageContent {
  status: number;
  title: string;
  paragraphs: string[];
}

// Someone who reaches an error page has usually finished the consent form already: say that their
// answer is safe with HeyGen, so nobody repeats the recording because of a broken return link.
const alreadySaved =
  'If you have just finished the consent form, there is nothing more to do: your answer was saved by the consent provider and will be picked up automatically.';

const pages: Record<GatewayPage, PageContent> = {
  'thank-you': {
    status: 200,
    title: 'Thank you',
    paragraphs: ['Thank you, you are all set.', 'You can close this window now.'],
  },
  'invalid-link': {
    status: 400,
    title: 'This link is not valid',
    paragraphs: ['This return link is incomplete or was changed, so it cannot be used.', alreadySaved],
  },
  'expired-link': {
    status: 410,
    title: 'This link has expired',
    paragraphs: ['This return link is no longer valid.', alreadySaved],
  },
  'not-found': {
    status: 404,
    title: 'Page not found',
    paragraphs: ['There is no page at this address.'],
  },
  'method-not-allowed': {
    status: 405,
    title: 'Not allowed',
    paragraphs: ['This page can only be opened in a browser.'],
  },
  'uri-too-long': {
    status: 414,
    title: 'Link too long',
    paragraphs: ['This link is too long to be valid.', alreadySaved],
  },
  'too-many-requests': {
    status: 429,
    title: 'Too many requests',
    paragraphs: [
      'Too many requests came from your network. Please wait a minute and try again.',
      alreadySaved,
    ],
  },
  'server-error': {
    status: 500,
    title: 'Something went wrong',
    paragraphs: ['Something went wrong on our side.', alreadySaved],
  },
};

/** Headers for every HTML page: no scripts, no framing, no referrer, no sniffing, no caching. */
export const HTML_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'",
  'Referrer-Policy': 'no-referrer',
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Cache-Control': 'no-store',
};

const style = `
  body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; background: #f6f7f9; color: #1d2330; }
  main { max-width: 32rem; margin: 12vh auto; padding: 2rem; background: #fff; border-radius: 12px; box-shadow: 0 1px 4px rgba(0,0,0,.08); }
  h1 { font-size: 1.4rem; margin: 0 0 1rem; }
  p { line-height: 1.5; margin: 0 0 .75rem; }
`;

export function pageStatus(page: GatewayPage): number {
  return pages[page].status;
}

export function renderPage(page: GatewayPage): string {
  const { title, paragraphs } = pages[page];
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="robots" content="noindex, nofollow">',
    `<title>${title}</title>`,
    `<style>${style}</style>`,
    '</head>',
    '<body>',
    '<main>',
    `<h1>${title}</h1>`,
    ...paragraphs.map((text) => `<p>${text}</p>`),
    '</main>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
}
