import { Box, LinearProgress, Typography } from '@mui/material';
import { type ReactNode, useEffect } from 'react';

/** A page's heading (one h1 per page, also the document title) and a loading bar. */
export function Page({
  title,
  actions,
  loading,
  children,
}: {
  title: string;
  actions?: ReactNode;
  loading?: boolean;
  children: ReactNode;
}) {
  useEffect(() => {
    document.title = `${title} · Gatehouse`;
  }, [title]);
  return (
    <Box component="section" aria-labelledby="page-title">
      <Box sx={{ display: 'flex', alignItems: 'center', flexWrap: 'wrap', gap: 2, mb: 2 }}>
        <Typography id="page-title" variant="h5" component="h1" sx={{ flexGrow: 1 }}>
          {title}
        </Typography>
        {actions}
      </Box>
      <Box sx={{ height: 4, mb: 1 }}>{loading === true ? <LinearProgress aria-label="Loading" /> : null}</Box>
      {children}
    </Box>
  );
}
