"""Documents for `lctk ask`: text extraction with page/section maps (load), sentences and windows."""
