/** The `code` of what `fn` throws (an AgateError's stable code), or 'no error': tests assert on codes, not messages. */
export function errorCode(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as { code: string }).code;
  }
  return 'no error';
}
