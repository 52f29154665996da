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
import { type FormEvent, useState } from 'react';
import type { Artifact } from '../api/types.ts';
import { useAuth } from '../auth/auth-context.tsx';
import { useDraft } from '../lib/drafts.ts';
import { ErrorAlert } from './error-alert.tsx';

/** An administrator's verdict override; the reason is required and goes to the audit log. */
export function OverrideForm({ artifact, onDone }: { artifact: Artifact; onDone: (a: Artifact) => void }) {
  const { client } = useAuth();
  const [draft, update, clear] = useDraft(`override.${artifact.id}`, {
    status: artifact.status === 'approved' ? 'blocked' : 'approved',
    reason: '',
  });
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const updated = await client.request<Artifact>('POST', `/api/artifacts/${artifact.id}/verdict`, {
        body: { status: draft.status, reason: draft.reason },
      });
      clear();
      onDone(updated);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Box component="form" onSubmit={submit} aria-label="Override verdict">
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
      <Button type="submit" variant="contained" color="warning" disabled={busy || draft.reason.trim() === ''}>
        Override verdict
      </Button>
    </Box>
  );
}
