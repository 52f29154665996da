import { Button, Typography } from '@mui/material';
import { Link as RouterLink } from 'react-router';
import { Page } from '../components/page.tsx';

export function NotFoundPage() {
  return (
    <Page title="Page not found">
      <Typography>There is no console page at this address.</Typography>
      <Button component={RouterLink} to="/" sx={{ mt: 2 }}>
        Go to your start page
      </Button>
    </Page>
  );
}
