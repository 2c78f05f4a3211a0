// The model flatbuffer, kept in flash (see model_data.cpp, written by Forecast Studio).
#pragma once

extern const unsigned char g_model[];
extern const unsigned int g_model_len;
