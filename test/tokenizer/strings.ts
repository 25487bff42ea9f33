// Strings no training text contains: unicode, whitespace runs, newlines, emoji, digits, code (shared by tests).
export const TRICKY = [
  "",
  " ",
  "\n",
  "Hello world",
  "   three leading spaces and trailing   ",
  "tabs\tand\t\ttabs\r\nwindows line\r\n",
  "\n\n\nblank lines\n\n\n",
  "naïve café, Ærøskøbing, Straße, İstanbul",
  "日本語のテキスト、中文文本。한국어 텍스트",
  "emoji 😀👍🏽🇫🇷 family 👨‍👩‍👧 and ZWJ",
  "math: ∑ x² ≤ ½ · π ≈ 3.14159; 1,000,000 and 12:30",
  "function f(x) { return x ** 2 !== 0 ? `a${x}` : null; } // code",
  "it's they're I'll we'd you've 'quoted' \"double\"",
  "\u00a0nbsp\u00a0 \u3000ideographic\u3000 \u2028line sep\u2029",
  "combining e\u0301 and a\u0308",
];
