import {
  Box,
  Button,
  FormControl,
  FormControlLabel,
  FormLabel,
  Radio,
  RadioGroup,
  TextField,
} from '@mui/material';
import type { FormEvent } from 'react';
import type { Artifact } from '../api/types.ts';
import { useAuth } from '../auth/auth-context.tsx';
import { useDraft } from '../lib/drafts.ts';
import { useSubmit } from '../lib/use-submit.ts';
import { ErrorAlert } from './error-alert.tsx';

/** An administrator's verdict override; the reason is required and goes to the audit log. */
export function OverrideForm({ artifact, onDone }: { artifact: Artifact; onDone: (a: Artifact) => void }) {
  const { client } = useAuth();
  const [draft, update, clear] = useDraft(`override.${artifact.id}`, {
    status: artifact.status === 'approved' ? 'blocked' : 'approved',
    reason: '',
  });
  const { busy, error, run } = useSubmit();
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void run(async () => {
      const updated = await client.request<Artifact>('POST', `/api/artifacts/${artifact.id}/verdict`, {
        body: { status: draft.status, reason: draft.reason },
      });
      clear();
      onDone(updated);
    });
  };
  return (
    <Box component="form" onSubmit={submit} aria-label="Override verdict" aria-busy={busy}>
      <FormControl>
        <FormLabel id="override-status">New verdict</FormLabel>
        <RadioGroup
          row
          aria-labelledby="override-status"
          value={draft.status}
          onChange={(e) => update({ status: e.target.value })}
        >
          <FormControlLabel value="approved" control={<Radio />} label="Approve" />
          <FormControlLabel value="blocked" control={<Radio />} label="Block" />
          {artifact.statusBy === 'override' ? (
            <FormControlLabel value="policy" control={<Radio />} label="Back to the policy (rescan)" />
          ) : null}
        </RadioGroup>
      </FormControl>
      <TextField
        label="Reason (recorded in the audit log)"
        value={draft.reason}
        onChange={(e) => update({ reason: e.target.value })}
        required
        fullWidth
        multiline
        minRows={2}
        slotProps={{ htmlInput: { maxLength: 1000 } }}
        sx={{ my: 1 }}
      />
      <ErrorAlert error={error} />
      <Button
        type="submit"
        variant="contained"
        color="warning"
        loading={busy}
        disabled={draft.reason.trim() === ''}
      >
        Override verdict
      </Button>
    </Box>
  );
}
