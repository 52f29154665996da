import type { ApiClient, Query } from '../api/client.ts';
import type { AuditPage } from '../api/types.ts';

/** Page size and page bound of an export: 200 000 events at most, so a runaway loop cannot happen. */
export const EXPORT_PAGE = 1000;
export const EXPORT_MAX_PAGES = 200;

/**
 * Fetches every event matching the filters, page by page, as JSON Lines (one event per line,
 * the same form as the gateway's audit file).
 */
export async function exportAuditJsonl(
  client: ApiClient,
  filters: Query,
  onProgress?: (count: number) => void,
  signal?: AbortSignal,
): Promise<{ text: string; count: number; truncated: boolean }> {
  const lines: string[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < EXPORT_MAX_PAGES; page++) {
    const answer = await client.get<AuditPage>(
      '/api/audit-logs',
      { ...filters, limit: EXPORT_PAGE, ...(cursor === undefined ? {} : { cursor }) },
      signal,
    );
    for (const e of answer.events) lines.push(JSON.stringify(e));
    onProgress?.(lines.length);
    cursor = answer.nextCursor;
    if (cursor === undefined || answer.events.length === 0)
      return {
        text: lines.length === 0 ? '' : `${lines.join('\n')}\n`,
        count: lines.length,
        truncated: false,
      };
  }
  return { text: `${lines.join('\n')}\n`, count: lines.length, truncated: true };
}
