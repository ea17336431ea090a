"""Tasks of infomamba: one folder per modality (datamodule + module), plus shared data utilities."""
