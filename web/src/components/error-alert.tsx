import { Alert, AlertTitle, Button, Typography } from '@mui/material';
import { ApiError, adviceFor } from '../api/problem.ts';

/** Shows a failure as a sentence, what to do about it, and the server's errorId to quote. */
export function ErrorAlert({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  if (error === undefined || error === null) return null;
  const api = error instanceof ApiError ? error : undefined;
  const message = error instanceof Error ? error.message : String(error);
  const advice = api === undefined ? undefined : adviceFor(api);
  return (
    <Alert
      severity="error"
      role="alert"
      sx={{ my: 2 }}
      action={
        onRetry === undefined ? undefined : (
          <Button color="inherit" size="small" onClick={onRetry}>
            Retry
          </Button>
        )
      }
    >
      <AlertTitle>
        {api?.title !== undefined && api.title !== message ? api.title : 'Something went wrong'}
      </AlertTitle>
      <Typography variant="body2">{message}</Typography>
      {advice === undefined ? null : <Typography variant="body2">{advice}</Typography>}
      {api?.errorId === undefined ? null : (
        <Typography variant="caption" component="p" sx={{ mt: 0.5 }}>
          Error id: <code data-testid="error-id">{api.errorId}</code>
          {api.code.startsWith('GW_ERR_') ? (
            <>
              {' '}
              · code <code>{api.code}</code>
            </>
          ) : null}
        </Typography>
      )}
    </Alert>
  );
}
